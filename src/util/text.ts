/**
 * Untrusted text (a table name, a conversation id, a tool's message) where a person reads it: the
 * job's log, its summary, an issue comment.
 */

/**
 * One line of untrusted text: line breaks and control characters become spaces, and the
 * characters that reorder what is displayed (bidirectional overrides) become U+FFFD. In the
 * job's log no line of it can then start a workflow command (`::error::`, `::add-mask::`).
 */
export function oneLine(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex -- control characters are what it replaces
      .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
      .replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '\ufffd')
  )
}

/**
 * Untrusted text as inline code, which Markdown shows literally: no HTML, links, emphasis,
 * @-mentions or #-references. The fence is longer than any run of backticks inside it.
 */
export function code(s: string): string {
  const t = oneLine(s)
  if (!t.trim()) return '(empty)'
  const fence = '`'.repeat(Math.max(0, ...(t.match(/`+/g) ?? []).map((m) => m.length)) + 1)
  // CommonMark strips one space at each end when both are there: pad so the text stays whole.
  const pad = t.startsWith('`') || t.endsWith('`') || (t.startsWith(' ') && t.endsWith(' '))
  return pad ? `${fence} ${t} ${fence}` : `${fence}${t}${fence}`
}

/**
 * Text that mixes this tool's words with untrusted names, for a Markdown table cell or a line of
 * the summary: one line, no HTML (GitHub renders a summary's HTML), no links or images (`[` and
 * `]` escaped), and no pipe that would end the cell.
 */
export function markdownText(s: string): string {
  return oneLine(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([[\]|])/g, '\\$1')
}
