// The Probot peer for `webhook_ingest.py`: Probot (installed by the benchmark into a temporary
// folder from the npm registry) on node's own http server, one no-op handler for every event.
// Probot acknowledges after its handlers return and stores nothing.
//     node probot_server.mjs <port> <webhook secret>
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import { Probot, createNodeMiddleware } from "probot";

const [port, secret] = process.argv.slice(2);
// Never used for a request (the handler calls nothing), but Probot wants an App's key.
const { privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const probot = new Probot({ appId: 1, privateKey, secret, logLevel: "warn" });
const middleware = await createNodeMiddleware(
  (app) => {
    app.onAny(async () => {});
  },
  { probot, webhooksPath: "/webhooks/github" },
);
createServer((req, res) => {
  middleware(req, res, () => {
    res.writeHead(404).end();
  });
}).listen(Number(port), "127.0.0.1");
