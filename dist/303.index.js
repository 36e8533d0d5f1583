export const id = 303;
export const ids = [303];
export const modules = {

/***/ 64303:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   parseJUnit: () => (/* binding */ parseJUnit)
/* harmony export */ });
/* harmony import */ var fast_xml_parser__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(41143);
/* harmony import */ var fast_xml_parser__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(75824);
/**
 * pytest's JUnit XML report (`--junitxml`, `junit_family=xunit1`) read into the outcome of each
 * test. The report is the source of truth for counts and failures: pytest's terminal output is
 * for people and changes with plugins and verbosity.
 */

const ARRAYS = new Set(['testsuites', 'testsuite', 'testcase', 'failure', 'error', 'skipped']);
const parser = new fast_xml_parser__WEBPACK_IMPORTED_MODULE_0__/* ["default"] */ .A({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    textNodeName: '#text',
    alwaysCreateTextNode: true,
    // Every value stays a string: a test named "1e3" must not become 1000.
    parseTagValue: false,
    parseAttributeValue: false,
    isArray: (name) => ARRAYS.has(name),
    // pytest writes a newline in a message attribute as &#10;. Since 5.7, fast-xml-parser decodes
    // character references only with this option (NaturalIntelligence/fast-xml-parser#829); it
    // also knows HTML's named entities, which pytest never writes.
    htmlEntities: true,
});
const str = (v) => (typeof v === 'string' ? v : '');
const nodes = (v) => Array.isArray(v) ? v.map((x) => (typeof x === 'object' && x !== null ? x : {})) : [];
/** Every <testcase> under the root, at any depth of <testsuites>/<testsuite>. */
function testcases(node) {
    const out = nodes(node.testcase);
    for (const child of [...nodes(node.testsuites), ...nodes(node.testsuite)])
        out.push(...testcases(child));
    return out;
}
/** The element's message attribute, else the first line of its text. */
function messageOf(el) {
    const message = str(el.message).trim();
    if (message)
        return message;
    return (str(el['#text'])
        .split('\n')
        .map((l) => l.trim())
        .find(Boolean) ?? '');
}
/**
 * What went wrong in a collection or internal error, whose message attribute is only
 * "collection failure" or "internal error": the traceback's last `E   ` line, else its last line.
 */
function errorLine(el) {
    const lines = str(el['#text'])
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
    const e = lines.filter((l) => /^E\s/.test(l)).at(-1);
    return (e ? e.replace(/^E\s+/, '') : lines.at(-1)) || messageOf(el);
}
/**
 * pytest's node id from xunit1's attributes: `classname` is the dotted module path plus any
 * classes, `file` the module's path, so the classes are what `classname` adds to the module.
 */
function nodeId(classname, name, file) {
    if (!file)
        return classname ? `${classname}.${name}` : name;
    const module = file.replace(/\.py$/, '').replace(/[\\/]/g, '.');
    const classes = classname.startsWith(`${module}.`) && classname.length > module.length + 1
        ? classname.slice(module.length + 1).split('.')
        : [];
    return [file, ...classes, name].join('::');
}
const RANK = { passed: 0, skipped: 1, error: 2, failed: 3 };
/** Parses the report; throws an Error naming what is wrong when it is not a JUnit XML report. */
function parseJUnit(xml) {
    const valid = fast_xml_parser__WEBPACK_IMPORTED_MODULE_1__/* .XMLValidator */ .iI.validate(xml);
    if (valid !== true) {
        throw new Error(`not well-formed XML (line ${valid.err.line}: ${valid.err.msg})`);
    }
    const root = parser.parse(xml);
    if (!('testsuites' in root) && !('testsuite' in root))
        throw new Error('no <testsuites> or <testsuite> element');
    const results = {
        tests: 0,
        passed: 0,
        failed: 0,
        errors: 0,
        skipped: 0,
        problems: [],
        skips: [],
    };
    // pytest writes a test twice when it fails and its teardown errors too; count it once.
    const outcomes = new Map();
    for (const tc of testcases(root)) {
        const name = str(tc.name);
        // An interrupted run leaves a <testcase> with no name: nothing ran there.
        if (!name)
            continue;
        const classname = str(tc.classname);
        const file = str(tc.file) || null;
        // xunit1 gives the 0-based line of the test's definition (its first decorator).
        const line = /^\d+$/.test(str(tc.line)) ? Number(tc.line) + 1 : null;
        // A file-level entry (a collection error, a module skipped as a whole) has no classname.
        const where = {
            name: classname ? nodeId(classname, name, file ?? '') : (file ?? name),
            file,
            line,
        };
        const failures = nodes(tc.failure);
        const errors = nodes(tc.error);
        const skipped = nodes(tc.skipped);
        // pytest reports a crash of its own as classname "pytest", name "internal", and a file it
        // could not collect as an error with an empty classname: neither is a selected test.
        if (classname === 'pytest' && name === 'internal') {
            for (const e of errors)
                results.problems.push({ ...where, message: errorLine(e), kind: 'internal' });
            results.errors++;
            continue;
        }
        if (classname === '' && errors.length > 0) {
            for (const e of errors) {
                results.problems.push({ ...where, message: errorLine(e), kind: 'collection' });
            }
            results.errors++;
            continue;
        }
        for (const f of failures)
            results.problems.push({ ...where, message: messageOf(f), kind: 'failure' });
        for (const e of errors)
            results.problems.push({ ...where, message: messageOf(e), kind: 'error' });
        for (const s of skipped) {
            results.skips.push({
                ...where,
                message: messageOf(s),
                kind: str(s.type) === 'pytest.xfail' ? 'xfail' : 'skip',
            });
        }
        const outcome = failures.length
            ? 'failed'
            : errors.length
                ? 'error'
                : skipped.length
                    ? 'skipped'
                    : 'passed';
        const key = `${classname}\0${name}\0${file ?? ''}`;
        const before = outcomes.get(key);
        if (!before || RANK[outcome] > RANK[before])
            outcomes.set(key, outcome);
    }
    for (const outcome of outcomes.values()) {
        results.tests++;
        if (outcome === 'passed')
            results.passed++;
        else if (outcome === 'failed')
            results.failed++;
        else if (outcome === 'error')
            results.errors++;
        else
            results.skipped++;
    }
    return results;
}


/***/ })

};
