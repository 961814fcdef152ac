import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { input, layers } from '@tensorflow/tfjs-layers';

type Shape = Array<number | null>;

/**
 * Base class for a layer built from child layers (TransformerBlock, VisionTransformer, ...).
 *
 * tfjs does not track layers held inside a custom layer: their weights would be missing from
 * `model.weights`, `countParams()` and saved files. A composite layer therefore
 * - creates its children in `build` and builds each through `child.apply(symbolicInput)`, which
 *   runs inside this layer's name scope, so weights get unique, structured names such as
 *   `vit/blocks/3/attn/qkv/kernel` (the pattern of tfjs-layers' own Wrapper and RNN layers);
 * - reports its own weights followed by its children's, in build order, from the weight getters;
 * - forwards `trainable` to its children, so freezing a block freezes all of it.
 */
export abstract class CompositeLayer extends layers.Layer {
  /** Child layers in build order. Their weights are reported as this layer's weights. */
  protected readonly childLayers: layers.Layer[] = [];

  /**
   * Builds `child` for an input of `inputShape` (batch dimension included, `null` allowed) inside
   * this layer's name scope and registers it. Call only from `build`. Returns the child's output
   * shape.
   */
  protected buildChild(child: layers.Layer, inputShape: Shape): Shape {
    // The fast-init flag is set by loadLayersModel on top-level layers; children inherit it so
    // that weights about to be overwritten are not drawn from their initializers.
    child.setFastWeightInitDuringBuild(this.fastWeightInitDuringBuildFlag());
    const out = child.apply(input({ batchShape: inputShape }));
    this.childLayers.push(child);
    const outShape = (out as { shape: Shape }).shape;
    return outShape;
  }

  private fastWeightInitDuringBuildFlag(): boolean {
    return (
      (this as unknown as { fastWeightInitDuringBuild?: boolean }).fastWeightInitDuringBuild ===
      true
    );
  }

  override get trainable(): boolean {
    return super.trainable;
  }

  override set trainable(value: boolean) {
    super.trainable = value;
    for (const child of this.childLayers) child.trainable = value;
  }

  override get trainableWeights(): LayerVariable[] {
    if (!super.trainable) return [];
    const own = super.trainableWeights;
    return own.concat(...this.childLayers.map((c) => c.trainableWeights));
  }

  override set trainableWeights(weights: LayerVariable[]) {
    super.trainableWeights = weights;
  }

  override get nonTrainableWeights(): LayerVariable[] {
    const own = super.nonTrainableWeights;
    if (super.trainable) return own.concat(...this.childLayers.map((c) => c.nonTrainableWeights));
    return own.concat(...this.childLayers.map((c) => c.weights));
  }

  override set nonTrainableWeights(weights: LayerVariable[]) {
    super.nonTrainableWeights = weights;
  }
  // No dispose override: Layer.dispose() disposes `this.weights`, which already includes the
  // children's weights through the getters above.
}
