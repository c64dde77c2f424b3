import { expect } from 'chai';
import path from 'node:path';
import { buildProgram, resolvePathOptions } from '../../../src/cli/program.js';

describe('path flags are absolute before any command sees them', () => {
  const program = buildProgram();
  const pathFlags = program.commands.flatMap((command) => command.options
    .filter((option) => /<(file|dir|path)>/.test(option.flags))
    .map((option) => ({ command, option })));

  it('covers the path flags of every command', () => {
    const names = new Set(pathFlags.map(({ option }) => option.long));
    for (const flag of ['--state-dir', '--config', '--template', '--values', '--output', '--token-file', '--kubeconfig', '--registry-config', '--github-secret-file']) {
      expect(names, flag).to.include(flag);
    }
  });

  for (const { command, option } of pathFlags) {
    it(`keelson ${command.name()} ${option.long}`, () => {
      const name = option.attributeName();
      const repeatable = Array.isArray(option.defaultValue);
      command.setOptionValueWithSource(name, repeatable ? ['a/one', '../two'] : 'rel/file', 'cli');
      resolvePathOptions(command);
      expect(command.getOptionValue(name)).to.deep.equal(repeatable
        ? [path.resolve('a/one'), path.resolve('../two')]
        : path.resolve('rel/file'));
      command.setOptionValueWithSource(name, '', 'cli');
      resolvePathOptions(command);
      expect(command.getOptionValue(name), 'an empty value stays empty (and is refused by the command)').to.equal('');
    });
  }
});
