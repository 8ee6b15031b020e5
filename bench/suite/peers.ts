// The tutorial's job run by the peers in bench/peers/ (a Keras script and a
// PyTorch script) on the dataset the e2e section wrote, when their Python
// packages import. The interpreter comes from KERAS_PYTHON / TORCH_PYTHON
// (default python3), so a virtualenv's python can be named.
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ORT_MALLOC_ENV } from "../../src/engine/onnx/ort-session.js";

const run = promisify(execFile);
const PEERS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "peers");

const PEERS = [
  { name: "Keras script", script: "keras_job.py", pythonEnv: "KERAS_PYTHON", module: "tensorflow" },
  { name: "PyTorch script", script: "torch_job.py", pythonEnv: "TORCH_PYTHON", module: "torch" },
] as const;

export interface PeerRun {
  name: string;
  seconds: number;
  valAccuracy: number;
  framework: string;
}

export interface PeerJob {
  dataDir: string;
  imageSize: number;
  epochs: number;
  unfrozenLayers: number;
  batchSize: number;
  validationSplit: number;
  seed: number;
}

/**
 * The peers' environment: this process's, with the glibc settings the service's training processes get
 * (ORT_MALLOC_ENV), so both sides run with the same allocator. PyTorch needs them as much as ONNX Runtime: on
 * this project's build machine the PyTorch script took 51.5 s without them and 16.6 s with them (80 images,
 * 224 px, 2 epochs; the time was page faults); the Keras script took the same either way.
 */
function peerEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...ORT_MALLOC_ENV };
}

/** Each peer whose packages import, run once; a peer that cannot run is said so on stderr and left out. */
export async function runPeers(job: PeerJob): Promise<PeerRun[]> {
  const runs: PeerRun[] = [];
  for (const peer of PEERS) {
    const python = process.env[peer.pythonEnv] || "python3";
    try {
      await run(python, ["-c", `import ${peer.module}`], { timeout: 120_000 });
    } catch {
      console.warn(`e2e: ${peer.name} skipped: ${python} cannot import ${peer.module} (set ${peer.pythonEnv} to a python that can)`);
      continue;
    }
    const args = [
      path.join(PEERS_DIR, peer.script),
      ...[
        "--data",
        job.dataDir,
        "--size",
        String(job.imageSize),
        "--epochs",
        String(job.epochs),
        "--unfrozen-layers",
        String(job.unfrozenLayers),
      ],
      ...["--batch-size", String(job.batchSize), "--validation-split", String(job.validationSplit), "--seed", String(job.seed)],
    ];
    const once = async (extraEnv: Record<string, string>) => {
      const { stdout } = await run(python, args, {
        maxBuffer: 16 * 1024 * 1024,
        env: { ...peerEnv(), TF_CPP_MIN_LOG_LEVEL: "2", ...extraEnv },
      });
      return JSON.parse(stdout.trim().split("\n").at(-1)!) as Omit<PeerRun, "name">;
    };
    try {
      runs.push({ name: peer.name, ...(await once({})) });
    } catch (err) {
      // TensorFlow's oneDNN dies with SIGFPE where the CPU reports no cache sizes (a VM's cpuid; seen with 2.21 on
      // an AVX-512 EPYC): its AVX2 and AVX-512 convolutions size their blocks by dividing by the L2 size. Capped at
      // AVX, oneDNN keeps its own kernels (faster here than TF_ENABLE_ONEDNN_OPTS=0); the figure's name says so.
      if (peer.module === "tensorflow" && (err as { signal?: string }).signal === "SIGFPE") {
        console.warn(`e2e: ${peer.name} died with SIGFPE; running it again with ONEDNN_MAX_CPU_ISA=AVX`);
        try {
          runs.push({ name: `${peer.name} (oneDNN capped at AVX)`, ...(await once({ ONEDNN_MAX_CPU_ISA: "AVX" })) });
        } catch (again) {
          console.warn(`e2e: ${peer.name} failed: ${(again as Error).message.slice(0, 500)}`);
        }
        continue;
      }
      console.warn(`e2e: ${peer.name} failed: ${(err as Error).message.slice(0, 500)}`);
    }
  }
  return runs;
}
