// One measured figure of `npm run bench`, with what it depends on.
export interface Figure {
  section: "trunk" | "train" | "e2e" | "api" | "predict" | "tailstep";
  name: string;
  value: number;
  unit: string;
  backend: string;
  imageSize?: number;
  batchSize?: number;
  /** Threads computing (trunk pool) or serving (API: autocannon connections). */
  threads?: number;
  detail?: string;
}

export interface SuiteOptions {
  quick: boolean;
  backend: string;
}

export const HEAD = { pooling: "flatten", denseUnits: 256, dropout: 0.5 } as const;
