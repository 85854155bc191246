import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Built files go to dist/ and are served by the Bulwark server at / (packages/server/src/dashboard).
// Hashed file names under assets/ let the server cache them for a year; index.html is never cached.
// Nothing is inlined: the server's Content-Security-Policy allows scripts and styles from 'self' only.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    assetsInlineLimit: 0,
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
});
