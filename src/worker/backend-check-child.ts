// The child of checkBackend(): selects the requested backend, reports the
// outcome to its parent, and exits.
import { isAppError } from "../errors.js";
import type { TfjsBackendName } from "../config.js";
import { selectBackend } from "../backend/select-backend.js";
import type { BackendCheckMessage } from "./backend-check.js";

const requested = process.argv[2] as TfjsBackendName;
let message: BackendCheckMessage;
try {
  message = { info: await selectBackend(requested) };
} catch (err) {
  message = isAppError(err)
    ? { error: { code: err.code, message: err.message, details: err.details } }
    : { error: { code: "BACKEND_UNAVAILABLE", message: String((err as Error)?.message ?? err), details: { requested } } };
}
// Exit once the message is out: a loaded backend may keep the event loop alive.
process.send!(message, () => process.exit(0));
