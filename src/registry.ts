import { MultiHeadAttention } from './layers/attention';
import { HybridEmbed } from './layers/hybrid_embed';
import { LayerNorm } from './layers/layer_norm';
import { Linear } from './layers/linear';
import { MLP } from './layers/mlp';
import { PatchEmbed } from './layers/patch_embed';
import { registerLayer } from './layers/register';
import { TransformerBlock } from './layers/transformer_block';
import { ViTEmbedding } from './layers/vit_embedding';
import { HybridVisionTransformer } from './models/hybrid';
import { BasicBlock, ResNet18 } from './models/resnet';
import { VisionTransformer } from './models/vision_transformer';
import { AdamW } from './train/optimizers';

/**
 * Registers every vit-ts layer (and the AdamW optimizer) for deserialization and returns their
 * registered class names.
 *
 * Each layer registers itself when its module is loaded, and the package is marked
 * `"sideEffects": false` so that bundlers drop the layers an application does not use. An
 * application that only *loads* a saved model (`tf.loadLayersModel`) without otherwise using
 * the classes would lose them, and loading fails with "Unknown layer: VitTs>...". Calling this
 * function is a use of every class, so no bundler can drop them.
 *
 * @example
 * import { registerVitTsLayers } from 'vit-ts';
 * registerVitTsLayers();
 * const model = await tf.loadLayersModel('indexeddb://my-vit');
 */
export function registerVitTsLayers(): string[] {
  const classes = [
    PatchEmbed,
    ViTEmbedding,
    MultiHeadAttention,
    MLP,
    LayerNorm,
    Linear,
    TransformerBlock,
    VisionTransformer,
    BasicBlock,
    ResNet18,
    HybridEmbed,
    HybridVisionTransformer,
  ];
  // Registration is idempotent: the registry maps a class name to its class.
  for (const cls of classes) registerLayer(cls);
  return [...classes.map((c) => c.className), AdamW.className];
}
