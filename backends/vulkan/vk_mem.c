/* Buffers and transfers: device-local buffers for weights, KV cache and activations; host-visible
 * ones only for the per-step buffer, staging and readback. Uploads go through a staging buffer
 * in chunks. */
#include <string.h>

#include "vk_internal.h"

static int find_type(struct vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid)
{
	for (uint32_t i = 0; i < c->memprops.memoryTypeCount; i++) {
		VkMemoryPropertyFlags f = c->memprops.memoryTypes[i].propertyFlags;
		if ((bits & (1u << i)) && (f & want) == want && !(f & avoid))
			return (int)i;
	}
	return -1;
}

/* host: 0 = device-local, 1 = host-visible for writing (coherent), 2 = host-visible for reading
 * (cached where the device has it). */
int vk_buf_create(struct vk_ctx *c, struct vk_buf *b, VkDeviceSize size, int host, const char *what, char *err,
		  size_t errlen)
{
	memset(b, 0, sizeof(*b));
	size = (size + 15) & ~(VkDeviceSize)15;
	if (size == 0)
		size = 16;
	if (size > c->max_alloc)
		return awq_err(err, errlen, AWQ_ETOOBIG, "%s needs a %.1f MiB buffer; %s allows %.1f MiB per allocation",
			       what, size / 1048576.0, c->device, c->max_alloc / 1048576.0);
	if (c->max_allocs && c->n_allocs + 1 > c->max_allocs)
		return awq_err(err, errlen, AWQ_ETOOBIG, "%s: %s allows only %u memory allocations", what, c->device,
			       c->max_allocs);
	VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
				 .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
					  VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT,
				 .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
	int rc = vk_check(c, vkCreateBuffer(c->dev, &bi, NULL, &b->buf), "vkCreateBuffer", err, errlen);
	if (rc)
		return rc;
	VkMemoryRequirements req;
	vkGetBufferMemoryRequirements(c->dev, b->buf, &req);
	int t = -1;
	if (host == 0)
		t = find_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
	else if (host == 2)
		t = find_type(c, req.memoryTypeBits,
			      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
				      VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
	if (t < 0 && host)
		t = find_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
			      host == 1 ? 0 : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
	if (t < 0 && host)
		t = find_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
	if (t < 0)
		t = find_type(c, req.memoryTypeBits, 0, 0);
	if (t < 0) {
		vkDestroyBuffer(c->dev, b->buf, NULL);
		b->buf = VK_NULL_HANDLE;
		return awq_err(err, errlen, AWQ_EDEVICE, "%s: no suitable memory type on %s", what, c->device);
	}
	VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
				   .memoryTypeIndex = (uint32_t)t};
	VkResult r = vkAllocateMemory(c->dev, &ai, NULL, &b->mem);
	if (r != VK_SUCCESS) {
		vkDestroyBuffer(c->dev, b->buf, NULL);
		b->buf = VK_NULL_HANDLE;
		if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
			return awq_err(err, errlen, AWQ_ETOOBIG,
				       "%s: %s is out of memory allocating %.1f MiB (after %.1f MiB of weights, %.1f MiB KV cache)",
				       what, c->device, size / 1048576.0, c->weight_bytes / 1048576.0, c->kv_bytes / 1048576.0);
		return vk_check(c, r, "vkAllocateMemory", err, errlen);
	}
	c->n_allocs++;
	b->size = size;
	rc = vk_check(c, vkBindBufferMemory(c->dev, b->buf, b->mem, 0), "vkBindBufferMemory", err, errlen);
	if (rc)
		return rc;
	if (c->memprops.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
		b->coherent = !!(c->memprops.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
		rc = vk_check(c, vkMapMemory(c->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map), "vkMapMemory", err, errlen);
	} else if (host) {
		rc = awq_err(err, errlen, AWQ_EDEVICE, "%s: %s has no host-visible memory", what, c->device);
	}
	return rc;
}

void vk_buf_destroy(struct vk_ctx *c, struct vk_buf *b)
{
	if (b->buf)
		vkDestroyBuffer(c->dev, b->buf, NULL);
	if (b->mem) {
		vkFreeMemory(c->dev, b->mem, NULL);
		c->n_allocs--;
	}
	memset(b, 0, sizeof(*b));
}

void vk_flush(struct vk_ctx *c, const struct vk_buf *b)
{
	if (b->coherent)
		return;
	VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = b->mem, .size = VK_WHOLE_SIZE};
	vkFlushMappedMemoryRanges(c->dev, 1, &mr);
}

struct vk_range vk_whole(const struct vk_buf *b)
{
	struct vk_range r = {b->buf, 0, b->size};
	return r;
}

void vk_barrier(VkCommandBuffer cb)
{
	VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
			      .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
			      .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
					       VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
	VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
	vkCmdPipelineBarrier(cb, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* Compute to compute: the barrier between dispatches where no transfer is involved (lighter than
 * vk_barrier, which also waits for and makes visible transfer writes). */
void vk_barrier_compute(VkCommandBuffer cb)
{
	VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
			      .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
	vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
			     NULL, 0, NULL);
}

void vk_barrier_indirect(VkCommandBuffer cb)
{
	VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
			      .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
					       VK_ACCESS_INDIRECT_COMMAND_READ_BIT};
	vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
			     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT, 0, 1, &mb, 0, NULL, 0,
			     NULL);
}

int vk_begin_once(struct vk_ctx *c, VkCommandBuffer *cb, char *err, size_t errlen)
{
	VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = c->cpool,
					  .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
	int rc = vk_check(c, vkAllocateCommandBuffers(c->dev, &ai, cb), "vkAllocateCommandBuffers", err, errlen);
	if (rc)
		return rc;
	VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
				       .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
	rc = vk_check(c, vkBeginCommandBuffer(*cb, &bi), "vkBeginCommandBuffer", err, errlen);
	if (rc)
		vkFreeCommandBuffers(c->dev, c->cpool, 1, cb);
	return rc;
}

/* Wait for the greedy chain's step submitted with fence k (vk_chain) and make the fence reusable. */
int vk_chain_wait(struct vk_ctx *c, int k, char *err, size_t errlen)
{
	int rc = vk_check(c, vkWaitForFences(c->dev, 1, &c->chain_fence[k], VK_TRUE, UINT64_MAX), "vkWaitForFences", err,
			  errlen);
	c->chain_inflight[k] = 0;
	return rc ? rc : vk_check(c, vkResetFences(c->dev, 1, &c->chain_fence[k]), "vkResetFences", err, errlen);
}

int vk_wait(struct vk_ctx *c, char *err, size_t errlen)
{
	for (int k = 0; k < 2; k++) { /* a greedy chain's steps still queued */
		int rc = c->chain_inflight[k] ? vk_chain_wait(c, k, err, errlen) : 0;
		if (rc)
			return rc;
	}
	if (!c->inflight)
		return vk_validation_status(c, err, errlen);
	int rc = vk_check(c, vkWaitForFences(c->dev, 1, &c->fence, VK_TRUE, UINT64_MAX), "vkWaitForFences", err, errlen);
	c->inflight = 0;
	if (!rc)
		rc = vk_check(c, vkResetFences(c->dev, 1, &c->fence), "vkResetFences", err, errlen);
	return rc;
}

/* End, submit and wait for a one-time command buffer, then free it. */
int vk_submit_wait(struct vk_ctx *c, VkCommandBuffer cb, char *err, size_t errlen)
{
	int rc = vk_wait(c, err, errlen);
	if (!rc)
		rc = vk_check(c, vkEndCommandBuffer(cb), "vkEndCommandBuffer", err, errlen);
	VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
	if (!rc)
		rc = vk_check(c, vkQueueSubmit(c->queue, 1, &si, c->fence), "vkQueueSubmit", err, errlen);
	if (!rc) {
		c->inflight = 1;
		rc = vk_wait(c, err, errlen);
	}
	vkFreeCommandBuffers(c->dev, c->cpool, 1, &cb);
	return rc;
}

/* The largest of m and the n 16-bit words at h with the sign bit cleared: the bits of the largest
 * magnitude among 16-bit floats (their non-negative bit patterns order as their values, inf and NaN
 * above every finite one). A plain loop, so that the compiler vectorises it. */
static uint16_t max_mag16(const uint16_t *h, size_t n, uint16_t m)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t a = (uint16_t)(h[i] & 0x7fffu);
		m = a > m ? a : m;
	}
	return m;
}

#define SCAN_PIECE (256u << 10) /* bytes copied, then scanned while they are still in cache */

/* Copy host bytes into dst at off through the staging buffer, chunk by chunk; with max_mag, also the
 * bits of the largest magnitude among them as 16-bit floats (max_mag16). */
static int upload(struct vk_ctx *c, struct vk_buf *dst, VkDeviceSize off, const void *src, size_t bytes,
		  struct vk_buf *stage, uint16_t *max_mag, char *err, size_t errlen)
{
	const uint8_t *s = src;
	for (size_t done = 0; done < bytes;) {
		size_t n = bytes - done < stage->size ? bytes - done : (size_t)stage->size;
		VkCommandBuffer cb;
		int rc = vk_begin_once(c, &cb, err, errlen);
		if (rc)
			return rc;
		for (size_t p = 0; p < n; p += SCAN_PIECE) {
			size_t m = n - p < SCAN_PIECE ? n - p : SCAN_PIECE;
			memcpy((uint8_t *)stage->map + p, s + done + p, m);
			if (max_mag)
				*max_mag = max_mag16((const uint16_t *)(const void *)(s + done + p), m / 2, *max_mag);
		}
		vk_flush(c, stage);
		VkBufferCopy bc = {0, off + done, (n + 3) & ~(size_t)3};
		if (bc.size > stage->size || off + done + bc.size > dst->size)
			bc.size = n;
		vkCmdCopyBuffer(cb, stage->buf, dst->buf, 1, &bc);
		rc = vk_submit_wait(c, cb, err, errlen);
		if (rc)
			return rc;
		done += n;
	}
	return 0;
}

int vk_upload(struct vk_ctx *c, struct vk_buf *dst, VkDeviceSize off, const void *src, size_t bytes,
	      struct vk_buf *stage, char *err, size_t errlen)
{
	return upload(c, dst, off, src, bytes, stage, NULL, err, errlen);
}

int vk_upload16(struct vk_ctx *c, struct vk_buf *dst, VkDeviceSize off, const void *src, size_t bytes,
		struct vk_buf *stage, uint16_t *max_mag, char *err, size_t errlen)
{
	*max_mag = 0;
	return upload(c, dst, off, src, bytes, stage, max_mag, err, errlen);
}
