// The console's access to the /v1 API: the key lives in sessionStorage (never
// in a URL), every call sends it as a Bearer header, and errors come back as
// the API's coded {code, message}. JSON calls go through openapi-fetch typed
// by src/client/api-types.ts (generated from openapi.yaml), which
// `npm run typecheck` checks this code against (tsconfig.console.json).
// @ts-expect-error: the API serves openapi-fetch's browser build from node_modules (src/api/console-files.ts)
import createClient from "./vendor/openapi-fetch/index.mjs";

const KEY = "resnet-finetune.key";

export const key = {
  get: () => sessionStorage.getItem(KEY) ?? "",
  set: (value) => (value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY)),
};

function headers(extra = {}) {
  const k = key.get();
  return k ? { authorization: `Bearer ${k}`, ...extra } : extra;
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? `HTTP_${status}`;
  }
}

/** @type {import("openapi-fetch").Client<import("../src/client/api-types.js").paths>} */
export const client = createClient({ baseUrl: location.origin });
client.use({
  onRequest({ request }) {
    const k = key.get();
    if (k) request.headers.set("authorization", `Bearer ${k}`);
    return request;
  },
});

/**
 * The data of an openapi-fetch answer, or the API's coded error thrown.
 * @template T
 * @param {{ data?: T, error?: any, response: Response }} result
 * @returns {T}
 */
export function data(result) {
  if (result.response.ok) return result.data;
  throw new ApiError(result.response.status, result.error?.error);
}

async function failure(response) {
  const body = await response.json().catch(() => null);
  return new ApiError(response.status, body?.error);
}

/**
 * A multipart POST (predict), which openapi-fetch's typing does not cover; resolves with the JSON answer.
 * @param {string} path
 * @param {FormData} form
 */
export async function postForm(path, form) {
  const response = await fetch(path, { method: "POST", headers: headers(), body: form });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** An object URL of a binary answer (thumbnails, downloads): <img> and <a> cannot send the key themselves. */
export async function blobUrl(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return URL.createObjectURL(await response.blob());
}

/** Upload with progress (fetch reports none for request bodies). Resolves with the JSON answer. */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {}
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body?.error));
    };
    xhr.onerror = () => reject(new ApiError(0, { code: "NETWORK", message: "the upload did not reach the service" }));
    xhr.send(form);
  });
}

/**
 * Follows a Server-Sent Events stream with the key in a header (EventSource
 * cannot send one). A dropped connection is resumed with Last-Event-ID after
 * a second; `stop()` ends it. Calls onEvent(name, data) per event.
 */
export function followEvents(path, onEvent, onError) {
  let lastId = null;
  let stopped = false;
  let controller = null;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch(path, {
          headers: headers({ accept: "text/event-stream", ...(lastId ? { "last-event-id": lastId } : {}) }),
          signal: controller.signal,
        });
        if (!response.ok) throw await failure(response);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("id:")) lastId = line.slice(3).trim();
              else if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (data.length === 0) continue;
            if (onEvent(event, JSON.parse(data.join("\n"))) === "stop") stopped = true;
          }
          if (stopped) break;
        }
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) return onError(err);
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  }
  run();
  return {
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}
