// The hostile inputs built by test/security/hostile-inputs.ts (HDF5 weights
// reading host files, labels.csv and weights-zip bombs, huge predict images,
// prototype class names), as benchmark inputs.
import type { HostileInput } from "./hostile-input.js";

export async function hostileInputsOfInputsBranch(): Promise<HostileInput[]> {
  return [];
}
