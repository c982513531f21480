// A local snippet index for `snippet install hotbackup`, without the public registry.
//
//   mongosh --nodb --quiet snippets/hotbackup/local-index.js   sets mongosh's config for you
//   node snippets/hotbackup/local-index.js                     prints the URL to set yourself
//
// mongosh fetches snippetIndexSourceURLs with node-fetch, which reads http(s) and data:
// URLs but not file:// ones. So the index (brotli-compressed BSON, as
// mongodb-labs/mongosh-snippets' scripts/make-index.js writes it) travels inline in a
// data: URL, and its installSpec is `file:<this directory>`, which npm installs from disk.
// Undo with: config.reset('snippetIndexSourceURLs')
(() => {
  const fs = require('fs');
  const path = require('path');
  const zlib = require('zlib');

  // The few BSON types an index needs: documents, arrays, strings, int32, doubles, booleans.
  function bson(doc) {
    const parts = [];
    for (const [key, value] of Object.entries(doc)) {
      if (value === undefined) continue;
      const name = Buffer.from(`${key}\0`, 'utf8');
      let type;
      let body;
      if (typeof value === 'string') {
        const text = Buffer.from(value, 'utf8');
        body = Buffer.alloc(4 + text.length + 1);
        body.writeInt32LE(text.length + 1, 0);
        text.copy(body, 4);
        type = 0x02;
      } else if (typeof value === 'boolean') {
        body = Buffer.from([value ? 1 : 0]);
        type = 0x08;
      } else if (Number.isInteger(value) && Math.abs(value) < 2 ** 31) {
        body = Buffer.alloc(4);
        body.writeInt32LE(value, 0);
        type = 0x10;
      } else if (typeof value === 'number') {
        body = Buffer.alloc(8);
        body.writeDoubleLE(value, 0);
        type = 0x01;
      } else if (Array.isArray(value)) {
        body = bson(Object.fromEntries(value.map((v, i) => [String(i), v])));
        type = 0x04;
      } else {
        body = bson(value);
        type = 0x03;
      }
      parts.push(Buffer.from([type]), name, body);
    }
    const length = 4 + parts.reduce((n, p) => n + p.length, 0) + 1;
    const head = Buffer.alloc(4);
    head.writeInt32LE(length, 0);
    return Buffer.concat([head, ...parts, Buffer.from([0])]);
  }

  const dir = path.resolve(__dirname);
  const pjson = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const readme = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
  const index = {
    indexFileVersion: 1,
    metadata: { homepage: pjson.homepage || `file://${dir}` },
    index: [
      {
        name: pjson.name,
        snippetName: pjson.snippetName,
        installSpec: `file:${dir}`,
        version: pjson.version,
        description: pjson.description,
        license: pjson.license,
        readme,
      },
    ],
  };
  const packed = zlib.brotliCompressSync(bson(index));
  // Percent-encoded, not base64: mongosh splits the setting on ';', so `;base64` is out.
  let encoded = '';
  for (const byte of packed) {
    const c = String.fromCharCode(byte);
    encoded += /[A-Za-z0-9._~-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  const url = `data:application/octet-stream,${encoded}`;

  if (typeof config === 'object' && config !== null && typeof config.set === 'function') {
    const result = config.set('snippetIndexSourceURLs', url);
    if (!/has been changed/.test(String(result))) throw new Error(String(result));
    print(`snippetIndexSourceURLs now points at a local index holding ${pjson.snippetName} ${pjson.version} from ${dir}.`);
    print(`Run: snippet install ${pjson.snippetName}     (undo: config.reset('snippetIndexSourceURLs'))`);
  } else {
    console.log(url);
  }
})();
