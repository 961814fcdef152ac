/**
 * vit-ts: Vision Transformer building blocks for TensorFlow.js.
 *
 * Every export is named so bundlers can drop what an application does not use. The library
 * imports no tfjs backend: pick cpu, wasm, webgl, webgpu or tfjs-node in your application.
 * @packageDocumentation
 */
export {
  BackendError,
  CheckpointError,
  AtomicWriteError,
  ConfigError,
  DataError,
  InputShapeError,
  ModelFileError,
  NotBuiltError,
  ParallelWorkerError,
  SafetensorsError,
  VitTsError,
} from './errors';

export { MultiHeadAttention } from './layers/attention';
export type { AttentionOutput, MultiHeadAttentionArgs } from './layers/attention';
export { CompositeLayer } from './layers/composite';
export { HybridEmbed, backboneOutputShape } from './layers/hybrid_embed';
export type { HybridEmbedArgs } from './layers/hybrid_embed';
export { LayerNorm } from './layers/layer_norm';
export type { LayerNormArgs } from './layers/layer_norm';
export { Linear } from './layers/linear';
export type { LinearArgs } from './layers/linear';
export { MLP } from './layers/mlp';
export type { MLPArgs } from './layers/mlp';
export { dropPath, gelu, layerNorm, linear } from './layers/ops';
export { PatchEmbed } from './layers/patch_embed';
export type { PatchEmbedArgs } from './layers/patch_embed';
export { POS_EMBED_KINDS, sincos2dPosEmbed } from './layers/pos_embed';
export type { PosEmbedKind } from './layers/pos_embed';
export { numPrefixTokens, patchGrid, tokenGeometry } from './geometry';
export type { PatchGrid, PrefixTokens, Size2D, TokenGeometry } from './geometry';
export { countTrainableParams, formatSummary, summarize } from './layers/summary';
export type { SummaryRow } from './layers/summary';
export { TransformerBlock } from './layers/transformer_block';
export type { TransformerBlockArgs } from './layers/transformer_block';
export { ViTEmbedding } from './layers/vit_embedding';
export type { ViTEmbeddingArgs } from './layers/vit_embedding';

// --- fast matrix products per backend, forward and backward (src/ops/) ---
export {
  batchMatMul,
  depthwiseBatchMatMul,
  fastBatchMatMul,
  fastLinear2D,
  plainMatMul2D,
  productForm,
  setProductForm,
  splitLastAxis,
} from './ops/matmul';
export type { ProductForm } from './ops/matmul';
export { conv2d, convInputGrad, fastConv2d } from './ops/conv';
export { batchNormTrain } from './ops/norm';

export { guardEmptyBatch } from './models/batch_guard';
export { createResNet18, createViT } from './models/factory';
export type { CreateModelOptions, CreateResNet18Options } from './models/factory';

// --- reproducibility: the library's seeded generator (src/random.ts) ---
export {
  Random,
  createRandom,
  getRandomState,
  getSeed,
  mulberry32,
  setRandomState,
  setSeed,
  withSeed,
} from './random';
export type { RandomState } from './random';
export { countViTMacs, countViTParams } from './models/param_count';
export type { CountViTMacsOptions } from './models/param_count';
export {
  HYBRID_CONFIG_FIELDS,
  HYBRID_CONFIG_SCHEMA,
  HYBRID_VIT_PRESETS,
  HybridVisionTransformer,
  createHybridViT,
  getHybridViTPreset,
  resolveHybridViTConfig,
} from './models/hybrid';
export type {
  HybridBackboneName,
  HybridViTConfig,
  HybridViTPreset,
  HybridViTPresetName,
  HybridVisionTransformerArgs,
  ResolvedHybridViTConfig,
} from './models/hybrid';
export {
  IMAGENET_NORMALIZATION,
  INCEPTION_NORMALIZATION,
  VIT_PRESETS,
  getViTPreset,
} from './models/presets';
export type { Normalization, ViTPreset, ViTPresetName } from './models/presets';
export { BasicBlock, ResNet18, resNetFeatureSize } from './models/resnet';
export type {
  BasicBlockArgs,
  ResNet18Args,
  ResNetFeatureInfo,
  ResNetStem,
} from './models/resnet';
export {
  VIT_OPTION_DEFAULTS,
  VisionTransformer,
  resolveViTConfig,
} from './models/vision_transformer';
export { VIT_CONFIG_FIELDS, VIT_CONFIG_SCHEMA } from './models/vit_config';
export type { ResolveViTConfigOptions } from './models/vit_config';
export {
  LAYER_ARG_KEYS,
  checkKnownKeys,
  checkLayerArgs,
  ownEntry,
  resolveSchema,
  serializeSchema,
  validateField,
} from './config/schema';
export type { ConfigSchema, FieldSpec } from './config/schema';
export { DEFAULT_SIZE_LIMITS, getSizeLimits, setSizeLimits } from './models/limits';
export type { SizeLimits } from './models/limits';
export { checkViTSize, vitActivationsPerImage, vitParamsLowerBound } from './models/vit_size';
export { quantizeWeights } from './io/quantize';
export type { WeightQuantization } from './io/quantize';
export type {
  ForwardIntermediatesOptions,
  GlobalPool,
  ViTDistillationOutput,
  ViTIntermediatesOutput,
  ResolvedViTConfig,
  ViTAttentionOutput,
  ViTConfig,
  VisionTransformerArgs,
} from './models/vision_transformer';

// --- weights: safetensors, PyTorch key maps, resampling (src/weights/) ---
export {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './weights/dtype';
export { resamplePosEmbed, resize2d, resizeWeightMatrix } from './weights/resample';
export type { ResamplePosEmbedOptions, ResizeMethod, ResizeOptions } from './weights/resample';
export {
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEADER_STRINGS,
  SAFETENSORS_DTYPE_BYTES,
  entryToTensor,
  readSafetensors,
  writeSafetensors,
} from './weights/safetensors';
export type {
  SafetensorsData,
  SafetensorsDtype,
  SafetensorsEntry,
  SafetensorsFile,
} from './weights/safetensors';
export { vitConfigFromCheckpoint } from './weights/checkpoint_config';
export type { ViTConfigFromCheckpointOptions } from './weights/checkpoint_config';
export { exportStateDict, exportWeights } from './weights/export';
export type { ExportWeightsOptions } from './weights/export';
export {
  CIFAR_RESNET_RULES,
  HF_VIT_RULES,
  IGNORED_KEYS,
  TIMM_HYBRID_BACKBONE_RULES,
  TIMM_VIT_RULES,
  TORCHVISION_RESNET_RULES,
  TORCHVISION_VIT_RULES,
  buildKeyMap,
  mapWeightName,
} from './weights/keymaps';
export type { CheckpointFormat, KeyMapEntry, KeyRule, ModelFamily } from './weights/keymaps';
export type { TensorLayout } from './weights/layouts';
export { loadPretrained } from './weights/load';
export type {
  CheckpointSource,
  LoadPretrainedOptions,
  LoadReport,
  ShapeMismatch,
} from './weights/load';
export type { WeightsTarget } from './weights/model_target';

// --- analysis: attention maps, rollout, heatmaps, preprocessing (src/analysis/) ---
export {
  attentionMaps,
  findVisionTransformer,
  fuseHeads,
  getAttention,
  mapsFromAttentions,
  tokenLayout,
} from './analysis/attention';
export type {
  AttentionMapsOptions,
  AttentionResult,
  HeadReduction,
  MapsFromAttentionsOptions,
  QueryReduction,
  TokenLayout,
  ViTLike,
} from './analysis/attention';
export { drawToCanvas } from './analysis/canvas';
export {
  COLORMAP_NAMES,
  COLORMAP_SIZE,
  applyColormap,
  colormapTable,
  toRgba,
} from './analysis/colormap';
export type { ColormapName } from './analysis/colormap';
export { composeFigure, drawText } from './analysis/figure';
export type { FigureOptions, FigurePanel, RgbaImage } from './analysis/figure';
export { normalizeMaps } from './analysis/normalize';
export type { NormalizeOptions } from './analysis/normalize';
export { heatmapToRgba, overlayHeatmap } from './analysis/overlay';
export type { HeatmapOptions, OverlayOptions } from './analysis/overlay';
export { preprocess, preprocessPixels } from './analysis/preprocess';
export type { PixelSource, PreprocessOptions } from './analysis/preprocess';
export { attentionRollout, rolloutFromAttentions, rolloutMatrix } from './analysis/rollout';
export type { AttentionRolloutOptions, HeadFusion, RolloutOptions } from './analysis/rollout';
export { upsampleMaps } from './analysis/upsample';
export type { UpsampleMethod } from './analysis/upsample';

// --- backends: gradient kernels filling backend gaps (src/backends/) ---
export {
  GAP_KERNEL_NAMES,
  SLOW_NATIVE_KERNELS,
  ensureGradientKernels,
  registerMissingGradientKernels,
  useNativeGradientKernels,
} from './backends/conv_grad';
export type { GapKernelName } from './backends/conv_grad';
export { registerVitTsLayers } from './registry';

// --- train: optimizers with PyTorch defaults pinned across backends (src/train/) ---
export {
  ADAMW_DEFAULT_WEIGHT_DECAY,
  ADAM_DEFAULTS,
  AdamW,
  DEFAULT_NO_WEIGHT_DECAY,
  adam,
  adamw,
} from './train/optimizers';
export type { AdamOptions, AdamWOptions } from './train/optimizers';
export { softmaxCrossEntropy } from './train/losses';
export type { SoftmaxCrossEntropyOptions } from './train/losses';
export { hardDistillationLoss } from './train/distillation';
export type { HardDistillationOptions } from './train/distillation';
// --- train: the training kit (schedules, groups, clipping, EMA, freezing, augmentation, loop) ---
export { constantSchedule, warmupCosineSchedule } from './train/schedule';
export type { LrSchedule, WarmupCosineOptions } from './train/schedule';
export {
  countBlocks,
  createParamGroups,
  isRunningStatistic,
  layerIdOf,
} from './train/param_groups';
export type {
  HasWeights,
  ParamGroup,
  ParamGroupOptions,
  ParamGroupRule,
} from './train/param_groups';
export { GroupedAdamW } from './train/grouped_adamw';
export type { AdamSlotState, GroupedAdamWOptions, GroupedAdamWState } from './train/grouped_adamw';
export { clipByGlobalNorm, globalNorm } from './train/clip';
export type { ClippedGradients } from './train/clip';
export { ModelEma, type ModelEmaOptions } from './train/ema';
export { recomputeBatchNormStatistics } from './train/batch_norm_stats';
export type {
  RecomputeBatchNormOptions,
  RecomputeBatchNormResult,
} from './train/batch_norm_stats';
export { freeze, resetClassifier, unfreeze } from './train/freeze';
export type { ViTPart } from './train/freeze';
export {
  normalizeImages,
  randomCrop,
  randomHorizontalFlip,
  resizeImages,
} from './train/augment';
export type { RandomCropOptions, RandomSource } from './train/augment';
export { mixBatch, sampleBeta, smoothOneHot } from './train/mixup';
export type { MixedBatch, MixOptions } from './train/mixup';
export { Trainer, evaluateModel } from './train/trainer';
export type {
  EpochResult,
  EvalResult,
  TrainerGradientSource,
  TrainerMixOptions,
  TrainerOptions,
  TrainerState,
  TrainProgress,
} from './train/trainer';

// --- data: dataset decoders, browser-safe (src/data/; file loaders are in vit-ts/node) ---
export { encodeIdxUint8, parseIdx } from './data/idx';
export type { IdxArray, IdxDtype } from './data/idx';
export {
  CIFAR10_CLASSES,
  CIFAR10_RECORD_BYTES,
  CIFAR10_SIZE,
  FASHION_MNIST_CLASSES,
  concatDecoded,
  parseCifar10Batch,
  toImageDataset,
} from './data/datasets';
export type { DecodedImages, ImageDataset } from './data/datasets';
