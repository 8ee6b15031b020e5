// The shape of a weights file once opened, whatever its format: its weighted layers with their weights'
// names and shapes, whose values are read only when the weights are actually loaded.

export type WeightsFormat = "keras-h5" | "keras3" | "tfjs";

export interface SourceWeight {
  name: string;
  shape: number[];
  read(): Promise<Float32Array>;
}

export interface SourceLayer {
  /** The layer's name in the file (Keras 3: `<snake_case_class>[_n]`, its key in the file). */
  name: string;
  weights: SourceWeight[];
}

export interface WeightsSource {
  format: WeightsFormat;
  /**
   * Layers that hold weights, in the file's order. Keras 3 files keep no layer order (groups are
   * listed by name), so their layers are matched by key, never by position.
   */
  layers: SourceLayer[];
  matchBy: "name-or-position" | "keras3-key";
  close(): void;
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
