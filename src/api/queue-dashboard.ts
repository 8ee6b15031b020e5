// The queue dashboard (bull-board) at /admin/queues. It is read-only: a job
// retried or removed behind the API's back would leave its records and events
// inconsistent. It shows every tenant's jobs: auth.ts lets only admin keys in.
import type { FastifyInstance } from "fastify";
import type { Queue } from "bullmq";
import { createBullBoard } from "@bull-board/api";
import type { HTTPStatus } from "@bull-board/api/typings/app";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import { toAppError } from "./error-handler.js";

export const DASHBOARD_PATH = "/admin/queues";

export async function registerQueueDashboard(app: FastifyInstance, queues: Queue[]): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })), serverAdapter });
  // bull-board's plugin sets its own error handler; keep the service's coded error body (a 401 from auth too).
  serverAdapter.setErrorHandler((error) => {
    const appError = toAppError(error);
    // HTTPStatus lists only the statuses bull-board's own handlers use; its Fastify adapter sends any.
    return { status: appError.statusCode as HTTPStatus, body: { error: appError.toJSON() } };
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
}
