import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGREEMENT_ROWS, checkAgreement, sibylOutputs } from '../../loadtest/peer/agreement.ts';
import { selectPeers } from '../../loadtest/peer/peers.ts';
import { processCpuMs, processTreeCpuMs } from '../../loadtest/lib/processes.ts';
import { buildPool } from '../../loadtest/lib/requests.ts';

/** An OIP REST server that answers each of the pool's bodies with `answer(row index, Sibyl's output)`. */
function fakePeer(answer: (i: number, sibyl: number) => unknown): Promise<{ server: Server; base: string }> {
  const bodies = buildPool({ protocol: 'oip-rest', mix: 'eta-inline', seed: 42, size: AGREEMENT_ROWS }).requests.map((r) => r.body.toString());
  return sibylOutputs().then(
    (want) =>
      new Promise((resolve) => {
        const server = createServer((req, res) => {
          let body = '';
          req.on('data', (d: Buffer) => (body += d.toString()));
          req.on('end', () => {
            const i = bodies.indexOf(body);
            res.writeHead(i < 0 ? 400 : 200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(i < 0 ? { error: 'unknown row' } : answer(i, want[i]!)));
          });
        });
        server.listen(0, '127.0.0.1', () => resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
      }),
  );
}

const oip = (v: number) => ({ model_name: 'delivery-eta', outputs: [{ name: 'eta_minutes', datatype: 'FP32', shape: [1, 1], data: [v] }] });

describe('peer preflight: the same outputs as Sibyl for the same rows', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it("computes Sibyl's outputs through its execution step: plausible delivery times, one per row", async () => {
    const want = await sibylOutputs();
    expect(want).toHaveLength(AGREEMENT_ROWS);
    for (const v of want) expect(v).toBeGreaterThan(5);
    for (const v of want) expect(v).toBeLessThan(120);
  });

  it('passes a peer that answers float32-rounded copies of them, OIP object or one-element list (BentoML batching)', async () => {
    const plain = await fakePeer((_, v) => oip(Math.fround(v)));
    const listed = await fakePeer((_, v) => [oip(Math.fround(v))]);
    servers.push(plain.server, listed.server);
    await expect(checkAgreement(plain.base, 'oip-rest')).resolves.toMatch(new RegExp(`^${AGREEMENT_ROWS} rows agree`));
    await expect(checkAgreement(listed.base, 'oip-rest')).resolves.toMatch(/rows agree/);
  });

  it('fails a peer that is off by 0.01 minutes on one row, answers another row, or drops the output', async () => {
    const off = await fakePeer((i, v) => oip(i === 5 ? v + 0.01 : v));
    const shifted = await fakePeer((i, v) => oip(i === 3 ? v * 1.1 : v));
    const empty = await fakePeer(() => ({ model_name: 'delivery-eta', outputs: [] }));
    servers.push(off.server, shifted.server, empty.server);
    await expect(checkAgreement(off.base, 'oip-rest')).rejects.toThrow(/row 5: eta_minutes .* but Sibyl answers/);
    await expect(checkAgreement(shifted.base, 'oip-rest')).rejects.toThrow(/row 3/);
    await expect(checkAgreement(empty.base, 'oip-rest')).rejects.toThrow(/no outputs\[0\]\.data/);
  });
});

describe('peer selection', () => {
  it('takes all peers by default, none with --no-peer, and refuses an unknown name', () => {
    expect(selectPeers(undefined, false)).toEqual(['mlserver', 'kserve', 'bentoml', 'ray', 'pytriton']);
    expect(selectPeers('mlserver,kserve,bentoml,ray', true)).toEqual([]);
    expect(selectPeers('ray, kserve,ray', false)).toEqual(['ray', 'kserve']);
    expect(() => selectPeers('mlserver,triton', false)).toThrow(/unknown peer "triton"/);
  });
});

describe('server CPU of a process tree', () => {
  let parent: ReturnType<typeof spawn>;
  beforeAll(() => {
    // A shell whose child (not itself) burns CPU, as BentoML's workers and Ray's actors do for their parent.
    parent = spawn('bash', ['-c', 'node -e "const t = Date.now(); while (Date.now() - t < 10000) {}" & wait'], { stdio: 'ignore' });
  });
  afterAll(() => void parent.kill('SIGKILL'));

  it("charges a child's CPU to its parent", async () => {
    // The machine may be busy: wait (up to 20 s) until the tree has used 300 ms of CPU.
    let tree = 0;
    for (let i = 0; i < 200 && tree < 300; i++) {
      await new Promise((r) => setTimeout(r, 100));
      tree = processTreeCpuMs(parent.pid!)!;
    }
    expect(tree).toBeGreaterThanOrEqual(300);
    // The shell itself waits: nearly all of it is the child's.
    expect(processCpuMs(parent.pid!)!).toBeLessThan(100);
    expect(processTreeCpuMs(2 ** 22 + 12345)).toBeUndefined();
  });
});
