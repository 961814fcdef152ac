/**
 * `exportWeights`: vit-ts models to PyTorch state dicts (timm, torchvision, Hugging Face, CIFAR
 * ResNet layouts) as safetensors bytes that `model.load_state_dict(..., strict=True)` accepts.
 */
import { ConfigError } from '../errors';
import { VisionTransformer } from '../models/vision_transformer';
import { buildKeyMap, type CheckpointFormat } from './keymaps';
import { splitArrayToTorch, splitTorchShape, torchShapeOf } from './layouts';
import { resolveTarget, type WeightsTarget } from './model_target';
import { type SafetensorsEntry, writeSafetensors } from './safetensors';

/** Options of {@link exportWeights}. */
export interface ExportWeightsOptions {
  /** Key layout to write. */
  to: CheckpointFormat;
  /** Float storage type. Default `'F32'` (exact); `'F16'` / `'BF16'` halve the size. */
  dtype?: 'F32' | 'F16' | 'BF16';
  /**
   * Hugging Face only: backbone key prefix. Default `'vit.'` (ViTForImageClassification) when
   * the model has a head, `''` (ViTModel with `add_pooling_layer=False`) when it has none.
   */
  hfPrefix?: 'vit.' | '';
  /** Extra safetensors metadata (string values). `format: 'pt'` is always written. */
  metadata?: Record<string, string>;
}

/** Why a model cannot be written in a layout whose PyTorch class lacks one of its features. */
function layoutLimits(layer: VisionTransformer, to: CheckpointFormat): string[] {
  const c = layer.config;
  const out: string[] = [];
  if (to === 'torchvision' || to === 'hf') {
    const owner = to === 'hf' ? "transformers' ViT" : "torchvision's VisionTransformer";
    if (c.globalPool !== 'token')
      out.push(`${owner} pools the class token (model has globalPool '${c.globalPool}')`);
    if (c.numRegTokens > 0)
      out.push(`${owner} has no register tokens (model has numRegTokens ${c.numRegTokens})`);
    if (c.initValues != null)
      out.push(`${owner} has no LayerScale (model has initValues ${c.initValues})`);
    if (!c.qkvBias) out.push(`${owner} always has q/k/v biases (model has qkvBias false)`);
    if (c.distilled) out.push(`${owner} has no distillation token (model has distilled true)`);
    if (c.qkNorm) out.push(`${owner} has no qk-norm (model has qkNorm true)`);
    if (c.posEmbed === 'learned2d' || c.posEmbed === 'none')
      out.push(`${owner} has one 1-D position table (model has posEmbed '${c.posEmbed}')`);
  }
  if (to === 'torchvision' && c.imgSize[0] !== c.imgSize[1]) {
    out.push(
      `torchvision's VisionTransformer takes square images (model has imgSize [${c.imgSize.join(', ')}])`,
    );
  }
  return out;
}

/**
 * The model's weights as a PyTorch state dict (key -> float32 entry in PyTorch layout), in the
 * model's weight order. BatchNorm layers get their `num_batches_tracked` counter (int64 0) so
 * PyTorch's strict loading finds every buffer. Allocates no tensors.
 */
export function exportStateDict(
  model: WeightsTarget,
  options: Pick<ExportWeightsOptions, 'to' | 'hfPrefix'>,
): Map<string, SafetensorsEntry> {
  const caller = 'exportWeights';
  if (options == null || typeof options !== 'object') {
    throw new ConfigError(
      `${caller}: options { to: 'timm' | 'torchvision' | 'hf' | 'cifar' } are required, got ${String(options)}`,
    );
  }
  const target = resolveTarget(model, caller);
  const { to } = options;
  const hasHead = target.layer instanceof VisionTransformer ? target.layer.head != null : true;
  const hfPrefix = options.hfPrefix ?? (hasHead ? 'vit.' : '');
  const { entries, unmapped } = buildKeyMap(target.family, to, [...target.weights.keys()], {
    hfPrefix,
  });
  const limits = target.layer instanceof VisionTransformer ? layoutLimits(target.layer, to) : [];
  if (unmapped.length > 0 || limits.length > 0) {
    const parts = [...limits];
    if (unmapped.length) parts.push(`weights with no '${to}' key: ${unmapped.join(', ')}`);
    throw new ConfigError(
      `${caller}: this model cannot be written in the '${to}' layout: ${parts.join('; ')}`,
    );
  }
  const out = new Map<string, SafetensorsEntry>();
  for (const e of entries) {
    const variable = target.weights.get(e.name);
    if (!variable) continue;
    // Typed-array path: values straight from the backend to the file, no transpose kernels.
    const shape = variable.shape as number[];
    const parts = splitArrayToTorch(
      variable.read().dataSync() as Float32Array,
      shape,
      e.layout,
      e.keys.length,
    );
    const partShape = splitTorchShape(torchShapeOf(shape, e.layout), e.keys.length);
    e.keys.forEach((k, i) => {
      out.set(k, { dtype: 'F32', shape: partShape, data: parts[i] });
    });
    for (const k of e.keys) {
      if (k.endsWith('.running_mean')) {
        const counter = `${k.slice(0, -'running_mean'.length)}num_batches_tracked`;
        out.set(counter, { dtype: 'I64', shape: [], data: new BigInt64Array(1) });
      }
    }
  }
  return out;
}

/**
 * Writes the model's weights as safetensors bytes in a PyTorch layout: timm's
 * `VisionTransformer`, torchvision's `VisionTransformer` / `resnet18`, Hugging Face's
 * `ViTForImageClassification`, or the kuangliu CIFAR ResNet18. Linear kernels become `[out, in]`,
 * convolutions OIHW, the fused qkv splits into query/key/value for Hugging Face. Metadata holds
 * `format: 'pt'` and the vit-ts config (`vit_ts.config`, JSON). Allocates no lasting tensors.
 *
 * @example
 * const bytes = exportWeights(model, { to: 'timm' });
 * // Python: model.load_state_dict(safetensors.torch.load_file('model.safetensors'), strict=True)
 */
export function exportWeights(model: WeightsTarget, options: ExportWeightsOptions): Uint8Array {
  const state = exportStateDict(model, options);
  const { layer } = resolveTarget(model, 'exportWeights');
  const metadata: Record<string, string> = {
    ...(options.metadata ?? {}),
    format: 'pt',
    'vit_ts.layout': options.to,
    'vit_ts.config': JSON.stringify(layer.getConfig()),
  };
  return writeSafetensors(state, metadata, options.dtype ? { dtype: options.dtype } : {});
}
