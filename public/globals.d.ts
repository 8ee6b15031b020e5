// uPlot is loaded by a classic <script> (served from node_modules/uplot) and used as a global.
declare const uPlot: typeof import("uplot").default;
