// `npm run sample-dataset [file]`: a small two-class dataset (a zip of
// <class>/<image> folders, 32x32 PNGs) to try the API with, as in the README's
// walkthrough, and one of its images as sample-image.png to ask predict about.
import { writeFile } from "node:fs/promises";
import { classFolders, makeZip } from "../test/helpers/dataset-archives.js";

const file = process.argv[2] ?? "sample-dataset.zip";
const entries = await classFolders(["alpha", "beta"], 20);
await writeFile(file, await makeZip(entries));
await writeFile("sample-image.png", entries[0].data!);
console.log(`wrote ${file}: classes alpha and beta, 20 images each (32x32 PNG), and sample-image.png (${entries[0].path})`);
