/**
 * The image builders: the toil-ts image from the project's Dockerfile and its local stand-in
 * base, both built with buildah on the vfs storage driver, where the test cluster's kubelet
 * finds them.
 */
export { BASE_IMAGE_NAME, ensureBaseImage, type BuildLog, type BuiltImage } from './baseImage.js';
export { imageId, imageSize, runCommand, STORAGE_ARGS, type CommandResult } from './buildah.js';
export { ensureToilImage, PROJECT_ROOT, releaseImageName, type ToilImage } from './toilImage.js';
