/** Small shared pieces of the console: the session's principal, loading state, errors, tables. */
import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useEffect, useState } from 'preact/hooks';
import { ApiError, type Whoami } from './api.ts';

export const Me = createContext<Whoami>({ name: '', role: 'viewer' });

/** May the signed-in token change things (publisher or admin)? Viewers get no write controls. */
export function useCanWrite(): boolean {
  return useContext(Me).role !== 'viewer';
}

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change (and on reload); keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      (d) => live && (setData(d), setError(undefined), setLoading(false)),
      (e: Error) => live && (setError(e), setLoading(false)),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as Partial<ApiError> & Error;
  return (
    <div class="error" role="alert">
      {e.code ? <strong>{e.code}: </strong> : null}
      <span class="pre">{e.message ?? String(error)}</span>
    </div>
  );
}

export function Notice({ children }: { children: ComponentChildren }) {
  return (
    <div class="notice" role="status">
      {children}
    </div>
  );
}

/** A table that scrolls sideways on a narrow screen (focusable so the keyboard can scroll it). */
export function Table({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={label}>
      <table>{children}</table>
    </div>
  );
}

export function Page({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · Sibyl console`;
  }, [title]);
  return (
    <section class="page">
      <div class="page-head">
        <h1>{title}</h1>
        {actions}
      </div>
      {children}
    </section>
  );
}

export function time(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export function json(v: unknown): string {
  return JSON.stringify(v);
}

/** A JSON value spread over lines for <pre>. */
export function pretty(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

export function shortSha(sha: string): string {
  return sha.slice(0, 12);
}
