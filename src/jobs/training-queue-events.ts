// The training queue's event stream (BullMQ QueueEvents) on its own blocking
// connection, as every API process subscribes to it.
import { QueueEvents } from "bullmq";
import type { Config } from "../config.js";
import { redisOptions } from "./redis.js";
import { TRAINING_QUEUE } from "./training-queue.js";

export function createTrainingQueueEvents(config: Pick<Config, "redisUrl" | "redisPrefix">): QueueEvents {
  return new QueueEvents(TRAINING_QUEUE, {
    connection: { url: config.redisUrl, ...redisOptions("consumer") },
    prefix: config.redisPrefix,
  });
}
