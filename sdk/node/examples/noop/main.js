'use strict';
// The no-op function: answers every event with success, no output, no log (the
// benchmark worker of bench/runtimes: what the SDK itself costs per invocation).
const sluice = require('sluice-sdk'); // in this folder: the package itself (package.json "exports")

sluice.run(() => null);
