/**
 * `npm run image`: builds the toil-ts image from the Dockerfile into local buildah storage
 * (where the test cluster's kubelet finds it), with a local stand-in for the base image when no
 * registry is reachable. Nothing is rebuilt when neither the sources nor the base changed.
 */
import { imageSize } from './buildah.js';
import { ensureToilImage } from './toilImage.js';

const log = (line: string): void => {
  process.stderr.write(`image: ${line}\n`);
};

try {
  const img = await ensureToilImage(log);
  const size = await imageSize(img.name);
  const how = (b: { built: boolean; seconds: number }): string => (b.built ? `built in ${b.seconds.toFixed(0)} s` : 'up to date');
  log(`base ${img.base.name}: ${how(img.base)}`);
  log(`${img.name} (${img.id.slice(0, 12)}): ${how(img)}, ${size}`);
  process.stdout.write(`${img.name}\n`);
} catch (e) {
  process.stderr.write(`image: ${(e as Error).message}\n`);
  process.exit(1);
}
