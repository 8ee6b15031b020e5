// Loaded models for predict, least recently used evicted (and disposed) past
// `capacity`: a second predict on the same model does not load it again.
import type * as tf from "@tensorflow/tfjs";

/** What the cache holds: a TF.js model by default, or another engine's loaded model. */
interface Disposable {
  dispose(): void;
}

export interface ModelCache<T extends Disposable = tf.LayersModel> {
  /** The cached model for `key`, or `load()`'s, which concurrent callers share. */
  get(key: string, load: () => Promise<T>): Promise<T>;
  has(key: string): boolean;
  /** How many times a model was loaded (for tests and metrics). */
  readonly loads: number;
  clear(): void;
}

export function createModelCache<T extends Disposable = tf.LayersModel>(capacity: number): ModelCache<T> {
  const entries = new Map<string, Promise<T>>();
  let loads = 0;

  function evict(): void {
    while (entries.size > capacity) {
      const [oldest, model] = entries.entries().next().value as [string, Promise<T>];
      entries.delete(oldest);
      void model.then((m) => m.dispose()).catch(() => undefined);
    }
  }

  return {
    get(key, load) {
      let entry = entries.get(key);
      if (entry) {
        // Map order is insertion order: re-inserting marks it most recently used.
        entries.delete(key);
      } else {
        loads += 1;
        entry = load();
        // A failed load is not cached: the next call tries again.
        entry.catch(() => entries.get(key) === entry && entries.delete(key));
      }
      entries.set(key, entry);
      evict();
      return entry;
    },
    has(key) {
      return entries.has(key);
    },
    get loads() {
      return loads;
    },
    clear() {
      for (const model of entries.values()) void model.then((m) => m.dispose()).catch(() => undefined);
      entries.clear();
    },
  };
}
