/** Debian's pymongo 3.11 (python3-pymongo, installed by scripts/install.sh) as a client in tests. */
import { execFile, execFileSync } from 'node:child_process';

/**
 * A python3 that has pymongo: Debian's (where apt puts python3-pymongo) before the one
 * on PATH, which may be another installation (pyenv) without it.
 */
const PYTHON = ['/usr/bin/python3', 'python3'].find((python) => {
  try {
    execFileSync(python, ['-c', 'import pymongo'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

/** The reason to skip a pymongo test, or undefined when pymongo is here. */
export const PYMONGO_MISSING = PYTHON === undefined ? 'no python3 with pymongo here (scripts/install.sh installs python3-pymongo)' : undefined;

const INSERT_AND_READ = `
import json, sys
import pymongo
client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=60000)
coll = client.app.py
coll.insert_one({'_id': 1, 'from': 'pymongo'})
docs = list(coll.find({}))
print(json.dumps({'version': pymongo.version, 'primary': list(client.primary), 'docs': docs}))
client.close()
`;

/** Connects pymongo to `uri`, inserts `{_id: 1}` into app.py and reads it back; prints JSON with the primary it found. */
export function runPymongo(uri: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(PYTHON ?? 'python3', ['-c', INSERT_AND_READ, uri], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}
