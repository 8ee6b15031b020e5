// The Server-Sent Events reader the CLI uses, for tests.
export { readSse, type SseEvent } from "../../src/client/sse.js";
