#!/usr/bin/env node
// Runs the built CLI (dist/, made by npm run build), after checking
// the Node version: on older Node, libp2p 3 fails with an obscure error.
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  process.stderr.write(`lepton: needs Node.js 24 or newer, this is ${process.version}. Run it through npm (npm run lepton -- ARGS, which uses the Node 24 from devDependencies) or install Node 24.\n`)
  process.exit(1)
}
// the daemon re-executes itself with its V8 heap flags before loading the rest
const { execDaemonWithFlags } = await import('../dist/cli/node-flags.js')
execDaemonWithFlags()
const { main } = await import('../dist/cli/main.js')
process.exit(await main(process.argv.slice(2)))
