import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { input, layers } from '@tensorflow/tfjs-layers';
import { fastWeightInitDuringBuild } from '../tfjs_types';

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
 * - forwards `trainable` to all of its descendants when it is set.
 *
 * Freezing follows Keras: setting `trainable` on a layer sets it on every layer inside it, and a
 * later setting on an inner layer wins for that layer. `vit.trainable = false; vit.head.trainable
 * = true` leaves exactly the head's weights trainable. Each weight is trainable when the layer
 * that owns it is; a composite's `trainable` flag only says what was last set on it. As in
 * Keras, compile the model again after changing `trainable` (tfjs collects the trainable weights
 * at compile time).
 */
export abstract class CompositeLayer extends layers.Layer {
  /** Child layers in build order. Their weights are reported as this layer's weights. */
  protected readonly childLayers: layers.Layer[] = [];

  /** The child layers, in build order (empty before `build`). */
  get subLayers(): readonly layers.Layer[] {
    return this.childLayers;
  }

  /**
   * Builds `child` for an input of `inputShape` (batch dimension included, `null` allowed) inside
   * this layer's name scope and registers it. Call only from `build`. Returns the child's output
   * shape.
   */
  protected buildChild(child: layers.Layer, inputShape: Shape): Shape {
    // The fast-init flag is set by loadLayersModel on top-level layers; children inherit it so
    // that weights about to be overwritten are not drawn from their initializers.
    child.setFastWeightInitDuringBuild(fastWeightInitDuringBuild(this));
    const out = child.apply(input({ batchShape: inputShape }));
    this.childLayers.push(child);
    // A layer frozen before it was built freezes the children it builds.
    if (!this.trainable) child.trainable = false;
    const outShape = (out as { shape: Shape }).shape;
    return outShape;
  }

  override get trainable(): boolean {
    return super.trainable;
  }

  override set trainable(value: boolean) {
    super.trainable = value;
    for (const child of this.childLayers) child.trainable = value;
  }

  override get trainableWeights(): LayerVariable[] {
    // Own weights follow this layer's flag; each child's follow the child's own setting.
    const own = super.trainableWeights;
    return own.concat(...this.childLayers.map((c) => c.trainableWeights));
  }

  override set trainableWeights(weights: LayerVariable[]) {
    super.trainableWeights = weights;
  }

  override get nonTrainableWeights(): LayerVariable[] {
    const own = super.nonTrainableWeights;
    return own.concat(...this.childLayers.map((c) => c.nonTrainableWeights));
  }

  override set nonTrainableWeights(weights: LayerVariable[]) {
    super.nonTrainableWeights = weights;
  }
  // No dispose override: Layer.dispose() disposes `this.weights`, which already includes the
  // children's weights through the getters above.
}
