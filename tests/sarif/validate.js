// Validates the SARIF file named on the command line against the SARIF 2.1.0 JSON schema.
// Prints "valid", or the schema errors and exits 1.
const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');
const schemaFile = path.join(path.dirname(require.resolve('@microsoft/sarif-multitool-linux/package.json')), 'sarif-2.1.0.json');
const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const validate = ajv.compile(schema);
const doc = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
if (validate(doc)) {
  console.log('valid');
} else {
  console.log(JSON.stringify(validate.errors, null, 1));
  process.exit(1);
}
