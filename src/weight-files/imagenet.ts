// Keras' ImageNet weights for ResNet-50 without its top: the file, where Keras publishes it, its checksum.
export const IMAGENET_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5";
export const IMAGENET_WEIGHTS_URL = `https://storage.googleapis.com/tensorflow/keras-applications/resnet/${IMAGENET_WEIGHTS_FILE}`;
/** keras.applications.resnet WEIGHTS_HASHES["resnet50"][1] (the notop file). */
export const IMAGENET_WEIGHTS_MD5 = "4d473c1dd8becc155b73f8504c6f6626";
