// dependency-cruiser, read by test/architecture.test.ts: it lists the imports of src/; the test
// folds them into folders and fails on any cycle between folders.
module.exports = {
  forbidden: [{ name: "no-circular", severity: "error", from: { path: "^src" }, to: { circular: true } }],
  // swc parses the TypeScript: the typescript package (7, native) has no JavaScript compiler API.
  options: { parser: "swc", doNotFollow: { path: "node_modules" }, tsPreCompilationDeps: false },
};
