/**
 * A rule module rewritten as a function that the sandbox calls once per call (rule-sandbox.ts), so that each call
 * sees the rule as freshly loaded: its module-level `let`, `const`, Maps, arrays, caches and closures are made
 * again by every call, and nothing one caller's features reach survives into the next call.
 *
 * The module is parsed (acorn) and only its `export` syntax is blanked out with spaces, so that lines and columns in
 * rule errors still point into the rule's file: `export function predict` becomes `function predict`, an export
 * list `export { p as predict }` disappears, `export default x` becomes `;(x)`. Everything else is the author's
 * text, complete top-level statements, so it cannot end the function early. Throws INVALID_ARGUMENT for what cannot
 * be a rule: a syntax error, an `import` or `export ... from`, no export named `predict`. Top-level `await` and
 * `import.meta` parse in a module but not in a function: the sandbox refuses them when it compiles the script.
 */
import { parse, type Declaration, type Identifier, type Literal, type Pattern } from 'acorn';
import { SibylError } from '../../core/errors.ts';

/**
 * `script`: an expression script whose value is the rule's function (call it with no arguments; it returns the
 * module's `predict` binding, or undefined when that is not a function). Compile it with line offset -1: line 1
 * of the rule is line 1 of the script's second line.
 */
export function ruleScript(source: string, fileName: string): string {
  let program;
  try {
    program = parse(source, { ecmaVersion: 'latest', sourceType: 'module' });
  } catch (err) {
    throw invalid(`${fileName} does not compile: ${err instanceof Error ? err.message : String(err)}`);
  }
  const edits: { start: number; end: number; text: string }[] = [];
  const blank = (start: number, end: number) => edits.push({ start, end, text: spaces(source.slice(start, end)) });
  let predict: string | undefined;
  for (const node of program.body) {
    switch (node.type) {
      case 'ImportDeclaration':
        throw invalid(`${fileName}: rules cannot import modules (import of "${String(node.source.value)}")`);
      case 'ExportAllDeclaration':
        throw invalid(`${fileName}: rules cannot import modules (export from "${String(node.source.value)}")`);
      case 'ExportNamedDeclaration':
        if (node.source) throw invalid(`${fileName}: rules cannot import modules (export from "${String(node.source.value)}")`);
        if (node.declaration) {
          blank(node.start, node.declaration.start);
          if (declaredNames(node.declaration).includes('predict')) predict = 'predict';
        } else {
          blank(node.start, node.end);
          for (const s of node.specifiers) if (nameOf(s.exported) === 'predict') predict = nameOf(s.local);
        }
        break;
      case 'ExportDefaultDeclaration': {
        const d = node.declaration;
        if ((d.type === 'FunctionDeclaration' || d.type === 'ClassDeclaration') && d.id) blank(node.start, d.start);
        else {
          edits.push({ start: node.start, end: d.start, text: ';(' + spaces(source.slice(node.start + 2, d.start)) });
          edits.push({ start: d.end, end: d.end, text: ')' });
        }
        break;
      }
    }
  }
  if (predict === undefined) throw invalid(`${fileName} must export a function named predict (export function predict(features, ctx) { ... })`);
  let body = '';
  let at = 0;
  for (const e of edits.sort((a, b) => a.start - b.start || a.end - b.end)) {
    body += source.slice(at, e.start) + e.text;
    at = e.end;
  }
  body += source.slice(at);
  return `(function () { "use strict";\n${body}\n;return typeof ${predict} === "function" ? ${predict} : undefined;\n})`;
}

/** The same text with every character but line breaks turned into a space (keeps lines and columns). */
function spaces(text: string): string {
  return text.replace(/[^\n\r\u2028\u2029]/g, ' ');
}

function nameOf(n: Identifier | Literal): string {
  return n.type === 'Identifier' ? n.name : String(n.value);
}

/** The names a declaration binds: a function's or class's name, every identifier in `let`/`const`/`var` patterns. */
function declaredNames(d: Declaration): string[] {
  if (d.type === 'FunctionDeclaration' || d.type === 'ClassDeclaration') return [d.id.name];
  const names: string[] = [];
  const visit = (p: Pattern | null): void => {
    if (!p) return;
    if (p.type === 'Identifier') names.push(p.name);
    else if (p.type === 'ObjectPattern') for (const q of p.properties) visit(q.type === 'RestElement' ? q.argument : q.value);
    else if (p.type === 'ArrayPattern') for (const q of p.elements) visit(q);
    else if (p.type === 'RestElement') visit(p.argument);
    else if (p.type === 'AssignmentPattern') visit(p.left);
  };
  for (const v of d.declarations) visit(v.id);
  return names;
}

function invalid(message: string): SibylError {
  return new SibylError('INVALID_ARGUMENT', message);
}
