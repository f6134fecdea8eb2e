#!/usr/bin/env node
// ipmanager: extip's implementation of the External IP Controller's command line.
import {main} from '../dist/agent/main.js';

// Exit as soon as the work is done (SIGTERM must not wait for idle keep-alive sockets).
process.exit(await main(process.argv.slice(2)));
