// Static checks of docker-compose.yml, the Dockerfiles and .dockerignore: no
// Docker engine runs on the build machines, so this is what keeps them honest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { documentedOperations } from "../../src/api/openapi.js";
import { envVarsReadByCode } from "../helpers/env-vars.js";

/** The parts of a compose service these checks read. */
interface ComposeService {
  build?: { context: string; dockerfile: string };
  profiles?: string[];
  environment?: Record<string, string>;
  command?: string[];
  volumes?: string[];
  ports?: string[];
  restart?: string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { resources: { reservations: { devices: { driver: string; capabilities: string[] }[] } } };
}
type BuiltService = ComposeService & Required<Pick<ComposeService, "build">>;

const compose: { services: Record<string, ComposeService>; volumes: Record<string, unknown> } = parse(
  readFileSync("docker-compose.yml", "utf8"),
  {
    merge: true,
  },
);
const services = compose.services;

interface Stage {
  from: string;
  /** Instructions with continuation lines joined, comments dropped. */
  lines: string[];
}

function dockerfileStages(file: string): Stage[] {
  const lines = readFileSync(file, "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const stages: Stage[] = [];
  for (const line of lines) {
    if (/^FROM\s/i.test(line)) stages.push({ from: line.split(/\s+/)[1], lines: [] });
    else stages.at(-1)!.lines.push(line);
  }
  return stages;
}

const dockerignore = readFileSync(".dockerignore", "utf8")
  .split("\n")
  .filter((l) => l && !l.startsWith("#"));
/** What .dockerignore lets into the build context (it ignores everything, then re-includes these). */
const contextFiles = dockerignore.slice(1).map((r) => r.replace(/^!/, ""));

const built = Object.entries(services).filter((entry): entry is [string, BuiltService] => entry[1].build !== undefined);
const dockerfileOf = (s: BuiltService) => path.join(s.build.context, s.build.dockerfile);

test("docker-compose.yml has redis, api, a GPU worker and a worker-cpu profile", () => {
  assert.deepEqual(Object.keys(services).sort(), ["api", "redis", "worker", "worker-cpu"]);
  assert.deepEqual(services["worker-cpu"].profiles, ["cpu"]);
  assert.equal(services.worker.profiles, undefined, "the GPU worker starts with a plain `docker compose up`");
});

test("every built service's context and Dockerfile exist", () => {
  assert.equal(built.length, 3);
  for (const [name, s] of built) {
    assert.ok(existsSync(s.build.context), `${name}: context ${s.build.context}`);
    assert.ok(existsSync(dockerfileOf(s)), `${name}: ${dockerfileOf(s)}`);
  }
});

test("every environment variable the compose file sets is one the code reads", () => {
  const read = envVarsReadByCode();
  for (const [name, s] of Object.entries(services)) {
    for (const variable of Object.keys(s.environment ?? {})) {
      assert.ok(read.has(variable), `${name} sets ${variable}, which nothing in src/ reads`);
    }
  }
});

test("redis keeps an AOF on a volume and never evicts queue keys", () => {
  const command = services.redis.command ?? [];
  const arg = (flag: string) => command[command.indexOf(flag) + 1];
  assert.equal(arg("--appendonly"), "yes");
  assert.equal(arg("--maxmemory-policy"), "noeviction");
  assert.ok(services.redis.volumes?.some((v) => v.endsWith(":/data")));
  for (const [name, s] of Object.entries(services)) {
    if (name !== "redis") assert.equal(s.environment?.REDIS_URL, "redis://redis:6379", name);
  }
});

test("api and workers share one DATA_DIR volume", () => {
  for (const name of ["api", "worker", "worker-cpu"]) {
    const dataDir = services[name].environment?.DATA_DIR;
    assert.ok(services[name].volumes?.includes(`data:${dataDir}`), `${name} mounts the data volume on ${dataDir}`);
  }
  assert.ok("data" in compose.volumes && "redis" in compose.volumes);
});

test("the GPU worker reserves an NVIDIA GPU and runs tfjs-node-gpu", () => {
  const devices = services.worker.deploy?.resources.reservations.devices;
  assert.equal(devices?.[0]?.driver, "nvidia");
  assert.deepEqual(devices?.[0]?.capabilities, ["gpu"]);
  assert.equal(services.worker.environment?.TFJS_BACKEND, "tensorflow-gpu");
  assert.equal(services["worker-cpu"].environment?.TFJS_BACKEND, "tensorflow");
  assert.equal(services["worker-cpu"].deploy, undefined);
});

test("every service restarts, and redis and api have healthchecks", () => {
  for (const [name, s] of Object.entries(services)) assert.equal(s.restart, "unless-stopped", name);
  assert.ok(services.redis.healthcheck?.test.includes("ping"));
  for (const name of ["api", "worker", "worker-cpu"]) {
    assert.equal(services[name].depends_on?.redis?.condition, "service_healthy", name);
  }
});

test("the api's published port and healthcheck point at its PORT and a documented route", () => {
  const api = services.api;
  const port = api.environment?.PORT;
  assert.ok(
    api.ports?.some((p) => p.endsWith(`:${port}`)),
    `a published port maps to container port ${port}`,
  );
  const check = (api.healthcheck?.test ?? []).join(" ");
  const url = /http:\/\/127\.0\.0\.1:(\d+)(\/[a-z]+)/.exec(check);
  assert.ok(url, check);
  assert.equal(url[1], port);
  assert.ok(documentedOperations().includes(`GET ${url[2]}`), `${url[2]} is a documented GET route`);
});

for (const [name, s] of built) {
  test(`${dockerfileOf(s)} (${name}): non-root, production dependencies only, no dev files`, () => {
    const stages = dockerfileStages(dockerfileOf(s));
    const final = stages.at(-1)!;
    const user = final.lines.filter((l) => /^USER\s/i.test(l)).at(-1);
    assert.ok(user, "the final stage sets USER");
    assert.doesNotMatch(user, /^USER\s+(root|0)(:|\s|$)/i);
    assert.ok(
      stages.some((st) => st.lines.some((l) => /npm ci --omit=dev/.test(l))),
      "production install with npm ci --omit=dev",
    );
    const copied = final.lines.filter((l) => /^COPY\s/i.test(l)).join("\n");
    assert.doesNotMatch(copied, /\b(test|bench|scripts|src)\b/, "the final stage copies no sources, tests or benches");
    assert.match(copied, /dist/);
    // Files copied from the build context must exist in the repository.
    for (const line of stages.flatMap((st) => st.lines).filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))) {
      for (const source of line.split(/\s+/).slice(1, -1)) {
        assert.ok(existsSync(source), `${line}: ${source} exists`);
        assert.ok(contextFiles.includes(source), `${line}: .dockerignore lets ${source} in`);
      }
    }
    const cmd = final.lines.find((l) => /^CMD\s/i.test(l)) ?? "";
    const entry = /dist\/([a-z-]+)\.js/.exec(cmd);
    assert.ok(entry, cmd);
    assert.equal(entry[1], name === "api" ? "server" : "worker");
  });
}

test("the GPU image runs on CUDA 11.2 with cuDNN 8, what tfjs-node-gpu 4.22 (libtensorflow 2.9.1) needs", () => {
  const worker = built.find(([name]) => name === "worker");
  assert.ok(worker, "the GPU worker is built");
  const stages = dockerfileStages(dockerfileOf(worker[1]));
  const cuda = stages.map((st) => st.from).filter((from) => from.startsWith("nvidia/cuda:"));
  assert.ok(cuda.length > 0);
  for (const from of cuda) assert.match(from, /^nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-/);
  assert.match(stages.at(-1)!.lines.join("\n"), /TFJS_BACKEND=tensorflow-gpu/);
  const pkg = JSON.parse(readFileSync("package.json", "utf8"));
  assert.match(pkg.optionalDependencies["@tensorflow/tfjs-node-gpu"], /^\^?4\.22\./);
  assert.equal(pkg.allowScripts["@tensorflow/tfjs-node-gpu"], true);
});

test(".dockerignore lets in only what the images build from", () => {
  assert.equal(dockerignore[0], "*", "everything is ignored first");
  assert.ok(dockerignore.slice(1).every((r) => r.startsWith("!")));
  assert.deepEqual([...contextFiles].sort(), [
    "openapi.yaml",
    "package-lock.json",
    "package.json",
    "public",
    "src",
    "tsconfig.build.json",
    "tsconfig.json",
  ]);
});
