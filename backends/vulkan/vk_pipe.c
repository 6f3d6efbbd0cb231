/* Shader modules (SPIR-V embedded at build time), the one descriptor-set and pipeline layout all
 * shaders share, compute pipelines specialised per use (element type, workgroup size) and kept in
 * a pipeline cache, optionally persisted to the file named by AWQ_VK_PIPELINE_CACHE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_spirv.h"
#include "vk_internal.h"

static void cache_load(struct vk_ctx *c, VkPipelineCacheCreateInfo *ci, void **data)
{
	const char *path = getenv("AWQ_VK_PIPELINE_CACHE");
	FILE *f = path ? fopen(path, "rb") : NULL;
	*data = NULL;
	if (!f)
		return;
	long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	/* the driver checks the header (vendor, device, UUID) and ignores a foreign cache */
	if (n > 32 && n < (256l << 20) && fseek(f, 0, SEEK_SET) == 0 && (*data = malloc((size_t)n)) &&
	    fread(*data, 1, (size_t)n, f) == (size_t)n) {
		ci->initialDataSize = (size_t)n;
		ci->pInitialData = *data;
	}
	(void)c;
	fclose(f);
}

static void cache_save(struct vk_ctx *c)
{
	const char *path = getenv("AWQ_VK_PIPELINE_CACHE");
	size_t n = 0;
	if (!path || !c->pcache || vkGetPipelineCacheData(c->dev, c->pcache, &n, NULL) != VK_SUCCESS || !n)
		return;
	void *d = malloc(n);
	FILE *f = d ? fopen(path, "wb") : NULL;
	if (f && vkGetPipelineCacheData(c->dev, c->pcache, &n, d) == VK_SUCCESS)
		fwrite(d, 1, n, f);
	if (f)
		fclose(f);
	free(d);
}

int vk_pipes_init(struct vk_ctx *c, char *err, size_t errlen)
{
	VkDescriptorSetLayoutBinding b[VK_NBIND];
	for (int i = 0; i < VK_NBIND; i++)
		b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
						      .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
	VkDescriptorSetLayoutCreateInfo dl = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
					      .bindingCount = VK_NBIND, .pBindings = b};
	int rc = vk_check(c, vkCreateDescriptorSetLayout(c->dev, &dl, NULL, &c->dsl), "vkCreateDescriptorSetLayout", err,
			  errlen);
	if (rc)
		return rc;
	VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(struct vk_push)};
	VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
					 .pSetLayouts = &c->dsl, .pushConstantRangeCount = 1, .pPushConstantRanges = &pr};
	rc = vk_check(c, vkCreatePipelineLayout(c->dev, &pl, NULL, &c->playout), "vkCreatePipelineLayout", err, errlen);
	if (rc)
		return rc;
	VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
	void *data;
	cache_load(c, &ci, &data);
	VkResult r = vkCreatePipelineCache(c->dev, &ci, NULL, &c->pcache);
	if (r != VK_SUCCESS && data) { /* a corrupt file: start empty */
		ci.initialDataSize = 0;
		ci.pInitialData = NULL;
		r = vkCreatePipelineCache(c->dev, &ci, NULL, &c->pcache);
	}
	free(data);
	rc = vk_check(c, r, "vkCreatePipelineCache", err, errlen);
	if (rc)
		return rc;
	VkCommandPoolCreateInfo cp = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
				      .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = c->qfamily};
	rc = vk_check(c, vkCreateCommandPool(c->dev, &cp, NULL, &c->cpool), "vkCreateCommandPool", err, errlen);
	if (rc)
		return rc;
	VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
	return vk_check(c, vkCreateFence(c->dev, &fi, NULL, &c->fence), "vkCreateFence", err, errlen);
}

void vk_pipes_destroy(struct vk_ctx *c)
{
	cache_save(c);
	for (int i = 0; i < c->n_pipes; i++)
		vkDestroyPipeline(c->dev, c->pipes[i].pipe, NULL);
	for (int i = 0; i < c->n_modules; i++)
		vkDestroyShaderModule(c->dev, c->modules[i], NULL);
	if (c->pcache)
		vkDestroyPipelineCache(c->dev, c->pcache, NULL);
	if (c->dpool)
		vkDestroyDescriptorPool(c->dev, c->dpool, NULL);
	if (c->playout)
		vkDestroyPipelineLayout(c->dev, c->playout, NULL);
	if (c->dsl)
		vkDestroyDescriptorSetLayout(c->dev, c->dsl, NULL);
	if (c->fence)
		vkDestroyFence(c->dev, c->fence, NULL);
	if (c->cpool)
		vkDestroyCommandPool(c->dev, c->cpool, NULL);
}

static int get_module(struct vk_ctx *c, const char *name, VkShaderModule *out, char *err, size_t errlen)
{
	for (int i = 0; i < c->n_modules; i++)
		if (!strcmp(c->module_names[i], name)) {
			*out = c->modules[i];
			return 0;
		}
	for (size_t i = 0; i < sizeof(awq_spv_blobs) / sizeof(awq_spv_blobs[0]); i++) {
		if (strcmp(awq_spv_blobs[i].name, name))
			continue;
		if (c->n_modules == (int)(sizeof(c->modules) / sizeof(c->modules[0])))
			return awq_err(err, errlen, AWQ_EINVAL, "too many shader modules");
		VkShaderModuleCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
					       .codeSize = awq_spv_blobs[i].size, .pCode = awq_spv_blobs[i].code};
		int rc = vk_check(c, vkCreateShaderModule(c->dev, &ci, NULL, out), "vkCreateShaderModule", err, errlen);
		if (rc)
			return rc;
		c->module_names[c->n_modules] = awq_spv_blobs[i].name;
		c->modules[c->n_modules++] = *out;
		return 0;
	}
	return awq_err(err, errlen, AWQ_EUNSUPPORTED, "shader %s is not in this build", name);
}

/* AWQ_VK_PIPELINE_STATS=1: the driver's statistics of a pipeline just built, on stderr, one line per
 * executable (NVIDIA names its register count, shared memory and more; the registers decide how
 * many workgroups an SM holds, which no other tool here shows for Vulkan). */
static void print_stats(struct vk_ctx *c, VkPipeline pipe, const char *name, const int32_t *spec)
{
	PFN_vkGetPipelineExecutablePropertiesKHR props = (PFN_vkGetPipelineExecutablePropertiesKHR)vkGetDeviceProcAddr(
		c->dev, "vkGetPipelineExecutablePropertiesKHR");
	PFN_vkGetPipelineExecutableStatisticsKHR stats = (PFN_vkGetPipelineExecutableStatisticsKHR)vkGetDeviceProcAddr(
		c->dev, "vkGetPipelineExecutableStatisticsKHR");
	VkPipelineInfoKHR pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, .pipeline = pipe};
	uint32_t ne = 0;
	if (!props || !stats || props(c->dev, &pi, &ne, NULL) != VK_SUCCESS)
		return;
	for (uint32_t e = 0; e < ne; e++) {
		VkPipelineExecutableInfoKHR ei = {.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR, .pipeline = pipe,
						  .executableIndex = e};
		VkPipelineExecutableStatisticKHR st[32];
		uint32_t ns = 32;
		for (uint32_t i = 0; i < ns; i++)
			st[i] = (VkPipelineExecutableStatisticKHR){.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
		VkResult r = stats(c->dev, &ei, &ns, st);
		if (r != VK_SUCCESS && r != VK_INCOMPLETE)
			continue;
		fprintf(stderr, "awqrun vulkan pipeline %s [%d,%d,%d]:", name, spec[0], spec[1], spec[2]);
		for (uint32_t i = 0; i < ns; i++) {
			fprintf(stderr, " %s=", st[i].name);
			switch (st[i].format) {
			case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: fprintf(stderr, "%u", st[i].value.b32); break;
			case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: fprintf(stderr, "%lld", (long long)st[i].value.i64); break;
			case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
				fprintf(stderr, "%llu", (unsigned long long)st[i].value.u64);
				break;
			default: fprintf(stderr, "%g", st[i].value.f64); break;
			}
			fputc(i + 1 < ns ? ';' : '\n', stderr);
		}
		if (!ns)
			fputc('\n', stderr);
	}
}

/* Specialisation constants: 0 = element type / op / mode, 1 = workgroup size, 2 = bias type. */
int vk_pipe_get(struct vk_ctx *c, const char *name, int32_t s0, int32_t s1, int32_t s2, VkPipeline *out, char *err,
		size_t errlen)
{
	for (int i = 0; i < c->n_pipes; i++) {
		const struct vk_pipe *p = &c->pipes[i];
		if (!strcmp(p->name, name) && p->spec[0] == s0 && p->spec[1] == s1 && p->spec[2] == s2) {
			*out = p->pipe;
			return 0;
		}
	}
	if (c->n_pipes == VK_MAX_PIPES)
		return awq_err(err, errlen, AWQ_EINVAL, "too many pipeline variants");
	VkShaderModule m;
	int rc = get_module(c, name, &m, err, errlen);
	if (rc)
		return rc;
	int32_t spec[3] = {s0, s1, s2};
	VkSpecializationMapEntry me[3] = {{0, 0, 4}, {1, 4, 4}, {2, 8, 4}};
	VkSpecializationInfo si = {3, me, sizeof(spec), spec};
	VkComputePipelineCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
			  .module = m, .pName = "main", .pSpecializationInfo = &si},
		.layout = c->playout,
		.flags = c->pipe_stats ? VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR : 0};
	struct vk_pipe *p = &c->pipes[c->n_pipes];
	rc = vk_check(c, vkCreateComputePipelines(c->dev, c->pcache, 1, &ci, NULL, &p->pipe), "vkCreateComputePipelines",
		      err, errlen);
	if (rc)
		return awq_err(err, errlen, rc, "Vulkan: building the %s pipeline failed", name);
	snprintf(p->name, sizeof(p->name), "%s", name);
	memcpy(p->spec, spec, sizeof(spec));
	if (c->pipe_stats)
		print_stats(c, p->pipe, name, spec);
	c->n_pipes++;
	*out = p->pipe;
	return 0;
}

int vk_set_alloc(struct vk_ctx *c, VkDescriptorSet *set, char *err, size_t errlen)
{
	VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
					  .descriptorPool = c->dpool, .descriptorSetCount = 1, .pSetLayouts = &c->dsl};
	int rc = vk_check(c, vkAllocateDescriptorSets(c->dev, &ai, set), "vkAllocateDescriptorSets", err, errlen);
	if (rc)
		return rc;
	struct vk_range none[VK_NBIND - 1];
	for (int i = 0; i < VK_NBIND - 1; i++)
		none[i] = vk_whole(&c->dummy);
	vk_set_write(c, *set, none, VK_NBIND - 1);
	VkDescriptorBufferInfo bi = {c->step.buf, 0, VK_WHOLE_SIZE};
	VkWriteDescriptorSet w = {.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = *set, .dstBinding = 0,
				  .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
				  .pBufferInfo = &bi};
	vkUpdateDescriptorSets(c->dev, 1, &w, 0, NULL);
	return 0;
}

/* r[i] goes to binding i + 1; entries with buf == NULL are skipped. */
void vk_set_write(struct vk_ctx *c, VkDescriptorSet set, const struct vk_range *r, int n_ranges)
{
	VkDescriptorBufferInfo bi[VK_NBIND];
	VkWriteDescriptorSet w[VK_NBIND];
	uint32_t n = 0;
	for (int i = 0; i < n_ranges && i < VK_NBIND - 1; i++) {
		if (!r[i].buf)
			continue;
		bi[n] = (VkDescriptorBufferInfo){r[i].buf, r[i].off, r[i].size};
		w[n] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set,
					      .dstBinding = (uint32_t)i + 1, .descriptorCount = 1,
					      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &bi[n]};
		n++;
	}
	vkUpdateDescriptorSets(c->dev, n, w, 0, NULL);
}

void vk_dispatch(VkCommandBuffer cb, struct vk_ctx *c, VkPipeline p, VkDescriptorSet set, const struct vk_push *pc,
		 uint32_t gx, uint32_t gy, uint32_t gz)
{
	vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, p);
	vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->playout, 0, 1, &set, 0, NULL);
	vkCmdPushConstants(cb, c->playout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(*pc), pc);
	vkCmdDispatch(cb, gx, gy, gz);
	c->rec_dispatch++;
}

void vk_dispatch_indirect(VkCommandBuffer cb, struct vk_ctx *c, VkPipeline p, VkDescriptorSet set,
			  const struct vk_push *pc, VkBuffer args, VkDeviceSize off)
{
	vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, p);
	vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->playout, 0, 1, &set, 0, NULL);
	vkCmdPushConstants(cb, c->playout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(*pc), pc);
	vkCmdDispatchIndirect(cb, args, off);
	c->rec_dispatch++;
}
