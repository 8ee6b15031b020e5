// Slow clients cannot hold the API's connections: trickled headers, a body
// that stalls and a body that never ends are cut; a slow upload that keeps
// progressing still succeeds.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { build } from "../helpers/app.js";
import { classFolders, makeZip, multipartBody } from "../helpers/dataset-archives.js";
import { assertStillServing } from "../helpers/security.js";
import { filesUnder } from "../helpers/dataset-upload.js";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import type { Config } from "../../src/config.js";

const LIMITS = { HEADERS_TIMEOUT_MS: "1000", BODY_IDLE_TIMEOUT_MS: "1000", REQUEST_TIMEOUT_MS: "6000" };

async function listening(t: Parameters<typeof build>[0]): Promise<{ app: FastifyInstance; config: Config; port: number }> {
  const { app, config } = await build(t, LIMITS);
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, config, port: (app.server.address() as AddressInfo).port };
}

interface Slow {
  socket: net.Socket;
  /** Everything the server sent, once it closed the connection (rejects if it stays open `ms`). */
  closed(ms: number): Promise<string>;
}

function connect(port: number): Promise<Slow> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      let received = "";
      socket.on("data", (d) => (received += d.toString()));
      socket.on("error", () => {});
      const ended = new Promise<string>((r) => socket.once("close", () => r(received)));
      resolve({
        socket,
        closed: (ms) =>
          Promise.race([
            ended,
            new Promise<string>((_, fail) => setTimeout(() => fail(new Error(`connection still open after ${ms} ms`)), ms).unref()),
          ]),
      });
    });
    socket.once("error", reject);
  });
}

/** Writes `chunks` one every `everyMs` until the socket closes. */
function trickle(socket: net.Socket, chunks: Buffer[], everyMs: number): Promise<void> {
  return new Promise((resolve) => {
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || i >= chunks.length) {
        clearInterval(timer);
        return resolve();
      }
      socket.write(chunks[i++]);
    }, everyMs);
  });
}

async function datasetUpload(): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  return multipartBody(await makeZip(await classFolders(["a", "b"], 2)));
}

function head(body: { payload: Buffer; headers: Record<string, string> }): Buffer {
  return Buffer.from(
    `POST /v1/datasets HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${body.headers["content-type"]}\r\nContent-Length: ${body.payload.length}\r\n\r\n`,
  );
}

/** Scratch files of a cut upload go once its handler has unwound: wait for that, with a bound. */
async function tmpEmpty(config: Config, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  const tmp = path.join(config.dataDir, ".tmp");
  for (;;) {
    const left = await filesUnder(tmp).catch(() => []);
    if (left.length === 0) return;
    if (Date.now() > deadline) assert.fail(`files left in DATA_DIR/.tmp: ${left.join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The raw answer's body is the service's JSON error shape with `code`. */
function assertErrorCode(answer: string, code: string): void {
  const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
  assert.equal(JSON.parse(body).error.code, code, answer);
}

test("bytes that are not HTTP get 400 in the error shape, and the API keeps serving", async (t) => {
  const { app, config, port } = await listening(t);
  const garbage = await connect(port);
  garbage.socket.write("THIS IS NOT HTTP\r\n\r\n");
  const answer = await garbage.closed(8000);
  assert.match(answer, /^HTTP\/1\.1 400/);
  assertErrorCode(answer, "VALIDATION_FAILED");
  await assertStillServing(app, config);
});

test("headers trickled one line at a time are cut after HEADERS_TIMEOUT_MS with 408", async (t) => {
  const { app, config, port } = await listening(t);
  const slow = await connect(port);
  slow.socket.write("GET /v1/datasets HTTP/1.1\r\nHost: localhost\r\n");
  void trickle(
    slow.socket,
    Array.from({ length: 100 }, (_, i) => Buffer.from(`X-Slow-${i}: x\r\n`)),
    200,
  );
  const started = Date.now();
  const answer = await slow.closed(8000);
  assert.match(answer, /^HTTP\/1\.1 408/);
  assertErrorCode(answer, "REQUEST_TIMEOUT");
  assert.ok(Date.now() - started < 4000, `cut after ${Date.now() - started} ms`);
  await assertStillServing(app, config);
});

test("an upload whose body stops arriving is cut after BODY_IDLE_TIMEOUT_MS, leaving nothing", async (t) => {
  const { app, config, port } = await listening(t);
  const body = await datasetUpload();
  const slow = await connect(port);
  slow.socket.write(head(body));
  slow.socket.write(body.payload.subarray(0, Math.floor(body.payload.length / 2)));
  const started = Date.now();
  await slow.closed(8000);
  assert.ok(Date.now() - started < 4000, `cut after ${Date.now() - started} ms`);
  await tmpEmpty(config);
  await assertStillServing(app, config);
});

test("a body trickled just fast enough to dodge the idle timeout is cut at REQUEST_TIMEOUT_MS", async (t) => {
  const { app, config, port } = await listening(t);
  const body = await datasetUpload();
  const slow = await connect(port);
  slow.socket.write(head(body));
  const bytes = [...body.payload.subarray(0, 200)].map((b) => Buffer.from([b]));
  void trickle(slow.socket, bytes, 300);
  const started = Date.now();
  const answer = await slow.closed(12_000);
  assert.match(answer, /^HTTP\/1\.1 408/);
  assertErrorCode(answer, "REQUEST_TIMEOUT");
  assert.ok(Date.now() - started >= 5000, "not before REQUEST_TIMEOUT_MS");
  await tmpEmpty(config);
  await assertStillServing(app, config);
});

test("a slow upload that keeps progressing (pauses shorter than the idle timeout, longer in total) succeeds", async (t) => {
  const { app, config, port } = await listening(t);
  const body = await datasetUpload();
  const slow = await connect(port);
  slow.socket.write(head(body));
  const pieces = 8;
  const size = Math.ceil(body.payload.length / pieces);
  const chunks = Array.from({ length: pieces }, (_, i) => body.payload.subarray(i * size, (i + 1) * size));
  // 8 pieces 400 ms apart: about 3.2 s in all, three times BODY_IDLE_TIMEOUT_MS.
  await trickle(slow.socket, chunks, 400);
  slow.socket.end();
  const answer = await slow.closed(10_000);
  assert.match(answer, /^HTTP\/1\.1 201/);
  await assertStillServing(app, config);
});

test("a keep-alive connection carrying many uploads keeps no timeout listener per request", async (t) => {
  const { app, port } = await listening(t);
  const upload = multipartBody(Buffer.from("not an archive"));
  const sockets = new Set<net.Socket>();
  app.server.on("connection", (s: net.Socket) => sockets.add(s));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  for (let i = 0; i < 15; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ port, host: "127.0.0.1", method: "POST", path: "/v1/datasets", agent, headers: upload.headers }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end(upload.payload);
    });
    assert.equal(status, 400);
  }
  assert.equal(sockets.size, 1, "one connection carried every request");
  assert.ok([...sockets][0].listenerCount("timeout") <= 2, `timeout listeners: ${[...sockets][0].listenerCount("timeout")}`);
});
