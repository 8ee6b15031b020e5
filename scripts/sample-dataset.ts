// `npm run sample-dataset [file]`: a small two-class dataset (a zip of
// <class>/<image> folders, 32x32 PNGs) to try the API with, as in the README's walkthrough.
import { writeFile } from "node:fs/promises";
import { classFolders, makeZip } from "../test/helpers/dataset-archives.js";

const file = process.argv[2] ?? "sample-dataset.zip";
await writeFile(file, await makeZip(await classFolders(["alpha", "beta"], 20)));
console.log(`wrote ${file}: classes alpha and beta, 20 images each (32x32 PNG)`);
