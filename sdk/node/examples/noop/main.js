'use strict';
// The no-op function: answers every event with success, no output, no log (the
// benchmark worker of bench/runtimes: what the SDK itself costs per invocation).
const sluice = require('../..'); // require('sluice-sdk') outside this repository

sluice.run(() => null);
