import { expect, it } from 'vitest';
import { createViT, formatSummary, summarize } from '../../src/index';
import { describeBackends } from '../helpers/backends';
import { TINY_VIT } from '../helpers/tiny_models';

describeBackends('summary', () => {
  it('formatSummary marks the batch axis B and other open axes ?, with exact parameter counts', () => {
    const model = createViT({ ...TINY_VIT, depth: 2 });
    const rows = summarize(model, 2);
    const text = formatSummary(rows);
    const block = text.split('\n').find((l) => l.includes('blocks/0'));
    expect(block).toBeDefined();
    // Blocks are built for any token count: batch B, tokens ?, features 8.
    expect(block).toMatch(/\[B, \?, 8\]/);
    expect(text).not.toMatch(/\[B, B/);
    const total = rows.filter((r) => r.depth === 0).reduce((a, r) => a + r.params, 0);
    expect(total).toBe(model.countParams());
    model.dispose();
  });
});
