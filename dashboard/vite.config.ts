// The dashboard's build: a single-page app whose every file comes from this
// server (no CDN, no web fonts), so it works offline and under the strict
// content security policy server/dashboard-route.ts sends.
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Readable stack traces when a support engineer reports a dashboard bug.
    sourcemap: true,
  },
  server: {
    // `npx vite dashboard` for development against a running npm start.
    // ws: the live view's subscriptions go over a WebSocket at /graphql.
    proxy: {
      '/graphql': { target: 'http://127.0.0.1:5678', ws: true },
      '/dev-token': 'http://127.0.0.1:5678',
      '/dev': 'http://127.0.0.1:5678',
    },
  },
});
