// Conformance probe: runs the official Aztec node client (@aztec/stdlib 4.1.2,
// `createAztecNodeClient`, v4 API, `node_*` names) against a URL and reports, per read call,
// whether the answer passed the client's own zod validation.
//
// Usage: node conformance/client.mjs <url>
//
// Every read method of `AztecNodeApiSchema` that the simulated node serves is called twice:
// once alone ("single": one call per HTTP request, awaited in turn) and once together with all
// the others ("batch": issued in the same tick, so the client sends them as one JSON-RPC batch,
// which is what real applications do). Prints one JSON line on stdout:
//
//   {"client":"@aztec/stdlib 4.1.2","url":…,"methods":[…],"notCalled":[…],
//    "results":[{"call":"getBlock(number)","method":"getBlock","mode":"single","ok":true,"error":null},…],
//    "passed":n,"failed":n,"total":n}
//
// Exit code: 0 when every call passed, 1 when some failed, 2 when the probe itself broke.

// The client logs through pino; keep stdout for the report.
process.env.LOG_LEVEL ??= 'silent';

// zod's async object parsing leaves sibling rejections unhandled when a transform throws (for
// example `Fr.fromString` on a value above the field modulus). The call itself still rejects
// and is reported; the siblings are noise and must not crash the probe.
process.on('unhandledRejection', () => {});

const CLIENT = '@aztec/stdlib 4.1.2';
const CALL_TIMEOUT_MS = 10_000;

/** Read methods of the v4 client schema that the simulator serves, in call order. */
const METHODS = [
  'isReady',
  'getBlockNumber',
  'getProvenBlockNumber',
  'getCheckpointedBlockNumber',
  'getCheckpointNumber',
  'getL2Tips',
  'getWorldStateSyncStatus',
  'getNodeInfo',
  'getNodeVersion',
  'getVersion',
  'getChainId',
  'getL1ContractAddresses',
  'getProtocolContractAddresses',
  'getCurrentMinFees',
  'getPendingTxCount',
  'getBlock',
  'getBlockByHash',
  'getBlockHeader',
  'getTxReceipt',
  'getTxByHash',
  'getValidatorsStats',
  'getValidatorStats',
];

/** Schema methods deliberately not called: writes, and calls that change node state. */
const WRITES = ['sendTx', 'registerContractFunctionSignatures', 'simulatePublicCalls', 'isValidTx'];

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describe(err) {
  let text = err instanceof Error ? err.message : String(err);
  const cause = err && err.cause;
  if (cause && typeof cause === 'object' && 'code' in cause) {
    text = `${text} (code ${cause.code})`;
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

/** Checks that go beyond the schema: the value must be usable, not merely well-formed. */
function expectValue(name, value) {
  const optional = ['getTxByHash'];
  if (value === undefined && !optional.includes(name)) {
    throw new Error(`${name} returned undefined`);
  }
  return value;
}

async function main() {
  const url = process.argv[2];
  if (!url) {
    console.error('usage: node client.mjs <url>');
    process.exit(2);
  }
  const { createAztecNodeClient, AztecNodeApiSchema } = await import('@aztec/stdlib/interfaces/client');
  const { defaultFetch } = await import('@aztec/foundation/json-rpc/client');
  const { TxHash } = await import('@aztec/stdlib/tx');

  // The stock client retries failed requests for 1 + 2 + 3 s; a conformance failure should be
  // reported at once, so use the same fetch without retries. Everything else is the default.
  const plain = createAztecNodeClient(url, {}, defaultFetch);

  // Arguments that come from the node itself: a block number and hash, a validator address.
  // When a set-up call fails, the calls that need its value fail with the reason (and the
  // set-up method itself is reported failing below).
  const setup = async (what, run) => {
    try {
      return { value: await withTimeout(run(), what) };
    } catch (err) {
      return { error: `set-up call ${what} failed: ${describe(err)}` };
    }
  };
  const tips = await setup('getL2Tips', () => plain.getL2Tips());
  const world = await setup('getWorldStateSyncStatus', () => plain.getWorldStateSyncStatus());
  const info = await setup('getNodeInfo', () => plain.getNodeInfo());
  const stats = await setup('getValidatorsStats', () => plain.getValidatorsStats());
  const need = (got, pick) => {
    if (got.error) {
      return Promise.reject(new Error(got.error));
    }
    const value = pick(got.value);
    return value === undefined ? Promise.reject(new Error('set-up value missing')) : Promise.resolve(value);
  };
  // The proven block (every node of a fleet has it), else the world state's latest block.
  const block = tips.value ? tips : world;
  const blockNumber = () => need(block, b => Number(tips.value ? b.proven.block.number : b.latestBlockNumber));
  const blockHash = () => need(block, b => (tips.value ? b.proven.block.hash : b.latestBlockHash));
  const validator = () => need(stats, s => Object.keys(s.stats)[0]);
  const txHash = TxHash.fromString(`0x${'0'.repeat(62)}2a`);

  // From here on, the client also checks the identity headers against what getNodeInfo said.
  const versions = info.value ? { l1ChainId: info.value.l1ChainId, rollupVersion: info.value.rollupVersion } : {};
  const node = createAztecNodeClient(url, versions, defaultFetch);

  /** [label, method, () => promise] for every call. */
  const calls = [
    ['isReady', 'isReady', () => node.isReady()],
    ['getBlockNumber', 'getBlockNumber', () => node.getBlockNumber()],
    ['getProvenBlockNumber', 'getProvenBlockNumber', () => node.getProvenBlockNumber()],
    ['getCheckpointedBlockNumber', 'getCheckpointedBlockNumber', () => node.getCheckpointedBlockNumber()],
    ['getCheckpointNumber', 'getCheckpointNumber', () => node.getCheckpointNumber()],
    ['getL2Tips', 'getL2Tips', () => node.getL2Tips()],
    ['getWorldStateSyncStatus', 'getWorldStateSyncStatus', () => node.getWorldStateSyncStatus()],
    ['getNodeInfo', 'getNodeInfo', () => node.getNodeInfo()],
    ['getNodeVersion', 'getNodeVersion', () => node.getNodeVersion()],
    ['getVersion', 'getVersion', () => node.getVersion()],
    ['getChainId', 'getChainId', () => node.getChainId()],
    ['getL1ContractAddresses', 'getL1ContractAddresses', () => node.getL1ContractAddresses()],
    ['getProtocolContractAddresses', 'getProtocolContractAddresses', () => node.getProtocolContractAddresses()],
    ['getCurrentMinFees', 'getCurrentMinFees', () => node.getCurrentMinFees()],
    ['getPendingTxCount', 'getPendingTxCount', () => node.getPendingTxCount()],
    ['getBlock(number)', 'getBlock', () => blockNumber().then(n => node.getBlock(n))],
    ['getBlock(hash)', 'getBlock', () => blockHash().then(h => node.getBlock(h))],
    ['getBlock(latest)', 'getBlock', () => node.getBlock('latest')],
    ['getBlockByHash', 'getBlockByHash', () => blockHash().then(h => node.getBlockByHash(h))],
    ['getBlockHeader()', 'getBlockHeader', () => node.getBlockHeader()],
    ['getBlockHeader(number)', 'getBlockHeader', () => blockNumber().then(n => node.getBlockHeader(n))],
    ['getTxReceipt', 'getTxReceipt', () => node.getTxReceipt(txHash)],
    ['getTxByHash', 'getTxByHash', () => node.getTxByHash(txHash)],
    ['getValidatorsStats', 'getValidatorsStats', () => node.getValidatorsStats()],
    ['getValidatorStats', 'getValidatorStats', () => validator().then(v => node.getValidatorStats(v))],
  ];

  const results = [];
  const record = (label, method, mode, outcome) => {
    results.push({ call: label, method, mode, ok: outcome.ok, error: outcome.ok ? null : outcome.error });
  };
  const settle = (label, method, promise) =>
    withTimeout(promise, label).then(
      value => {
        expectValue(method, value);
        return { ok: true };
      },
    ).catch(err => ({ ok: false, error: describe(err) }));

  for (const [label, method, run] of calls) {
    record(label, method, 'single', await settle(label, method, run()));
  }
  // Issued in one tick: the client sends these as a single JSON-RPC batch.
  const batched = calls.map(([label, method, run]) => settle(label, method, run()));
  const outcomes = await Promise.all(batched);
  calls.forEach(([label, method], i) => record(label, method, 'batch', outcomes[i]));

  const called = new Set(calls.map(([, method]) => method));
  const missing = METHODS.filter(m => !called.has(m));
  if (missing.length > 0) {
    throw new Error(`METHODS lists methods no call exercises: ${missing.join(', ')}`);
  }
  const notCalled = Object.keys(AztecNodeApiSchema).filter(m => !called.has(m) && !WRITES.includes(m));
  const failed = results.filter(r => !r.ok).length;
  const report = {
    client: CLIENT,
    url,
    methods: METHODS,
    notCalled,
    results,
    passed: results.length - failed,
    failed,
    total: results.length,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch(err => {
  process.stdout.write(`${JSON.stringify({ client: CLIENT, fatal: describe(err) })}\n`);
  process.exit(2);
});
