/**
 * A CodeMirror 6 editor (from npm, bundled): JavaScript, YAML or JSON highlighting, and lint errors as you type
 * (acorn for the rule's module syntax, the yaml parser for the manifest, JSON.parse for rows). Its styles are
 * inserted under the page's CSP nonce (control-tower/console.ts). Tab is left to move focus (no tab trapping).
 */
import { javascript } from '@codemirror/lang-javascript';
import { json as jsonLanguage } from '@codemirror/lang-json';
import { yaml as yamlLanguage } from '@codemirror/lang-yaml';
import { linter, lintGutter, type Diagnostic } from '@codemirror/lint';
import { parse as parseJs } from 'acorn';
import { basicSetup, EditorView } from 'codemirror';
import { useEffect, useRef } from 'preact/hooks';
import { parseDocument } from 'yaml';

export type Language = 'javascript' | 'yaml' | 'json';

function nonce(): string {
  return document.querySelector('meta[name="csp-nonce"]')?.getAttribute('content') ?? '';
}

/** Syntax problems of `text`, positioned. */
export function lint(language: Language, text: string): Diagnostic[] {
  const at = (pos: number) => Math.max(0, Math.min(pos, text.length));
  if (language === 'javascript') {
    try {
      parseJs(text, { ecmaVersion: 'latest', sourceType: 'module' });
    } catch (err) {
      const e = err as SyntaxError & { pos?: number };
      const from = at(e.pos ?? 0);
      return [{ from, to: at(from + 1), severity: 'error', message: e.message }];
    }
    if (!/export\s+(async\s+)?function\s+predict\b|export\s+(const|let)\s+predict\b/.test(text)) {
      return [{ from: 0, to: 0, severity: 'error', message: 'the rule must export a function predict(features, ctx)' }];
    }
    return [];
  }
  if (language === 'yaml') {
    const doc = parseDocument(text);
    return doc.errors.map((e) => ({ from: at(e.pos[0]), to: at(Math.max(e.pos[1], e.pos[0] + 1)), severity: 'error' as const, message: e.message.split('\n')[0]! }));
  }
  try {
    JSON.parse(text);
    return [];
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    const from = at(m ? Number(m[1]) : 0);
    return [{ from, to: at(from + 1), severity: 'error', message: (err as Error).message }];
  }
}

const LANGUAGES = { javascript: () => javascript(), yaml: () => yamlLanguage(), json: () => jsonLanguage() };

export function CodeEditor({ id, label, language, value, onChange }: { id: string; label: string; language: Language; value: string; onChange: (text: string) => void }) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;
  useEffect(() => {
    const v = new EditorView({
      doc: value,
      parent: host.current!,
      extensions: [
        basicSetup,
        // Long lines wrap: the editor never scrolls sideways (a scrolling region must be reachable by keyboard).
        EditorView.lineWrapping,
        LANGUAGES[language](),
        linter((ev) => lint(language, ev.state.doc.toString()), { delay: 250 }),
        lintGutter(),
        EditorView.cspNonce.of(nonce()),
        EditorView.contentAttributes.of({ 'aria-label': label, 'data-editor': id }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) changed.current(u.state.doc.toString());
        }),
      ],
    });
    view.current = v;
    return () => v.destroy();
  }, []);
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
  }, [value]);
  return <div class="editor" id={id} ref={host} />;
}
