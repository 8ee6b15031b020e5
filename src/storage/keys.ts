// Where each kind of object lives in storage. Everything a client owns sits
// under its tenant's prefix, so tenant isolation is a property of the key.

export const storageKeys = {
  tenant: (tenant: string) => `tenants/${tenant}`,
  dataset: (tenant: string, datasetId: string) => `tenants/${tenant}/datasets/${datasetId}`,
  weights: (tenant: string, weightsId: string) => `tenants/${tenant}/weights/${weightsId}`,
  job: (tenant: string, jobId: string) => `tenants/${tenant}/jobs/${jobId}`,
  checkpoints: (tenant: string, jobId: string) => `tenants/${tenant}/jobs/${jobId}/checkpoints`,
  model: (tenant: string, modelId: string) => `tenants/${tenant}/models/${modelId}`,
  /** Shared, content-addressed caches (decoded images, frozen-trunk features): no client data is reachable by id. */
  cache: (kind: string) => `cache/${kind}`,
  /** Every frozen-trunk feature cache of one dataset, so deleting the dataset deletes them. */
  datasetFeatures: (tenant: string, datasetId: string) => `cache/features/${tenant}/${datasetId}`,
};
