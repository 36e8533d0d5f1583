export const id = 302;
export const ids = [302];
export const modules = {

/***/ 54302:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   fail: () => (/* binding */ fail),
/* harmony export */   step: () => (/* binding */ step),
/* harmony export */   warn: () => (/* binding */ warn)
/* harmony export */ });
/* harmony import */ var _actions_core__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(33838);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(99661);
/**
 * The action's step as the runner starts it (entry.ts loads this file only for the action):
 * the post step when the main step saved `isPost`, else the job itself. With main.ts and post.ts,
 * the only files that import @actions/core.
 */


/** Fails the step in one line (an `::error::` annotation). */
const fail = (message) => _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .setFailed */ .C1(message);
/** A warning annotation. */
const warn = (message) => _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .warning */ .$e(message);
/** The main step (`subAction`: the job a sub-action's entry fixed) or, run again, the post step. */
async function step(subAction) {
    const { actionsLog, run } = await Promise.all(/* import() */[__webpack_require__.e(79), __webpack_require__.e(346)]).then(__webpack_require__.bind(__webpack_require__, 55346));
    // The runner calls this same file again as the post step; main saved isPost for it.
    if (_actions_core__WEBPACK_IMPORTED_MODULE_0__/* .getState */ .Gu('isPost') === 'true')
        return (await Promise.all(/* import() */[__webpack_require__.e(79), __webpack_require__.e(242)]).then(__webpack_require__.bind(__webpack_require__, 45242))).runPost(actionsLog);
    try {
        await run(subAction);
    }
    catch (err) {
        // Whatever escaped run() (a runner file that cannot be written, a bug): one line, job failed.
        _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .setFailed */ .C1((0,_util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .describeError */ .U)(err));
    }
}


/***/ })

};
