/**
 * Structural check of a functional model topology before tfjs deserializes it. tfjs' own
 * deserializer re-queues a node whose inbound layer or node does not exist yet and loops until
 * every node is processed: a model.json whose `inbound_nodes` name a missing layer, a node index
 * that never exists, or a cycle makes `tf.loadLayersModel` spin forever. This check replays
 * that process on names and counts only, and refuses what would never finish.
 */
import { ModelFileError } from '../errors';

const MAX_LAYERS = 100_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const isIndex = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Throws a {@link ModelFileError} (naming `file`) if the topology cannot be deserialized in finite time. */
export function checkTopology(file: string, modelTopology: unknown): void {
  const fail = (what: string) => new ModelFileError(`loadModel: ${file}: modelTopology ${what}`);
  let topo = modelTopology;
  if (isRecord(topo) && topo['model_config'] != null) topo = topo['model_config'];
  if (!isRecord(topo) || typeof topo['class_name'] !== 'string' || !isRecord(topo['config'])) {
    throw fail('must be an object with class_name and config');
  }
  const config = topo['config'] as Record<string, unknown>;
  const layers = config['layers'];
  if (
    topo['class_name'] === 'Sequential' &&
    (Array.isArray(config['layers']) || Array.isArray(topo['config']))
  )
    return;
  if (!Array.isArray(layers) || layers.length > MAX_LAYERS) {
    throw fail(`config.layers must be an array of at most ${MAX_LAYERS} layers`);
  }
  const nodes = new Map<string, number>(); // layer name -> nodes created so far
  const pending: Array<{ layer: string; inputs: Array<[string, number, number]> }> = [];
  for (const [i, layer] of layers.entries()) {
    if (
      !isRecord(layer) ||
      typeof layer['name'] !== 'string' ||
      typeof layer['class_name'] !== 'string'
    ) {
      throw fail(`layer #${i} must have a string name and class_name`);
    }
    const name = layer['name'];
    if (nodes.has(name)) throw fail(`names layer '${name}' twice`);
    nodes.set(name, layer['class_name'] === 'InputLayer' ? 1 : 0);
    const inbound = layer['inbound_nodes'] ?? [];
    if (!Array.isArray(inbound)) throw fail(`layer '${name}' has a non-array inbound_nodes`);
    for (const node of inbound) {
      if (!Array.isArray(node))
        throw fail(`layer '${name}' has an inbound node that is not an array`);
      const inputs: Array<[string, number, number]> = [];
      for (const entry of node) {
        if (
          !Array.isArray(entry) ||
          typeof entry[0] !== 'string' ||
          !isIndex(entry[1]) ||
          !isIndex(entry[2])
        ) {
          throw fail(
            `layer '${name}' has an inbound entry ${JSON.stringify(entry)}; expected [layer name, node index, tensor index, kwargs]`,
          );
        }
        inputs.push([entry[0], entry[1], entry[2]]);
      }
      pending.push({ layer: name, inputs });
    }
  }
  for (const p of pending) {
    for (const [inbound] of p.inputs) {
      if (!nodes.has(inbound))
        throw fail(
          `layer '${p.layer}' takes input from '${inbound}', which is not a layer of the model`,
        );
    }
  }
  // Replay tfjs' rounds: a node is processed once its inbound nodes exist.
  let left = pending;
  while (left.length > 0) {
    const next = left.filter((p) => {
      const ready = p.inputs.every(([l, nodeIndex]) => (nodes.get(l) as number) > nodeIndex);
      if (ready && p.inputs.length > 0) nodes.set(p.layer, (nodes.get(p.layer) as number) + 1);
      return !ready;
    });
    if (next.length === left.length) {
      const p = next[0] as (typeof next)[number];
      throw fail(
        `layer '${p.layer}' waits for inbound nodes ${JSON.stringify(p.inputs)} that never exist (missing node or cycle)`,
      );
    }
    left = next;
  }
  for (const key of ['input_layers', 'output_layers']) {
    const list = config[key];
    if (!Array.isArray(list)) throw fail(`config.${key} must be an array`);
    for (const entry of list) {
      if (
        !Array.isArray(entry) ||
        typeof entry[0] !== 'string' ||
        !isIndex(entry[1]) ||
        !isIndex(entry[2])
      ) {
        throw fail(
          `config.${key} has an entry ${JSON.stringify(entry)}; expected [layer name, node index, tensor index]`,
        );
      }
      if (!((nodes.get(entry[0]) ?? 0) > (entry[1] as number))) {
        throw fail(`config.${key} names node ${entry[1]} of '${entry[0]}', which does not exist`);
      }
    }
  }
}
