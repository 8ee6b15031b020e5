// The model as ONNX, written from its TF.js files on first request and kept
// next to them: the TF.js model is the source, the .onnx file a derived copy
// (written atomically, so two first requests at once both leave a whole file).
import { tfjsToOnnx } from "../engine/onnx/tfjs-to-onnx.js";
import { MODEL_JSON, loadTfjsModel } from "../weight-files/index.js";
import type { Storage } from "../storage/storage.js";
import { modelKey, type ModelRecord } from "./model-store.js";

export const ONNX_FILE = "model.onnx";

/** The storage key of the model's ONNX file, written first if missing. Needs a TF.js backend selected. */
export async function ensureOnnxFile(storage: Storage, tenant: string, record: ModelRecord): Promise<string> {
  const key = modelKey(tenant, record.id, ONNX_FILE);
  if (await storage.exists(key)) return key;
  const model = await loadTfjsModel(await storage.localPath(modelKey(tenant, record.id, MODEL_JSON)));
  try {
    await storage.put(key, tfjsToOnnx(model).bytes);
  } finally {
    model.dispose();
  }
  return key;
}
