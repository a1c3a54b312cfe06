// Vite builds the UI into the directory the querier serves (-querier.ui-dir):
// `vite build --outDir <build>/share/hotpath/ui` (CMake target hotpath-ui).
// `npx vite` serves it for development with the API proxied to a local
// querier (make run: 127.0.0.1:4041, or HOTPATH_QUERIER).
import { defineConfig } from "vitest/config";


const querier = process.env.HOTPATH_QUERIER ?? "http://127.0.0.1:4041";

export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      "/querier.v1.QuerierService": querier,
      "/pyroscope": querier,
      "/api": querier,
    },
  },
  test: {
    include: ["test/unit/**/*.test.ts"],
    environment: "node",
  },
});
