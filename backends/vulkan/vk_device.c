/* Vulkan instance, physical-device enumeration and logical-device creation, with the feature and
 * limit checks the shaders rely on, and the validation-layer debug mode (AWQ_VK_VALIDATE=1). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

static const char *vk_result_name(VkResult r)
{
	switch (r) {
	case VK_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
	case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
	case VK_ERROR_INITIALIZATION_FAILED: return "initialization failed";
	case VK_ERROR_DEVICE_LOST: return "device lost";
	case VK_ERROR_LAYER_NOT_PRESENT: return "layer not present";
	case VK_ERROR_EXTENSION_NOT_PRESENT: return "extension not present";
	case VK_ERROR_FEATURE_NOT_PRESENT: return "feature not present";
	case VK_ERROR_INCOMPATIBLE_DRIVER: return "incompatible driver (no Vulkan 1.1 ICD)";
	case VK_ERROR_TOO_MANY_OBJECTS: return "too many objects";
	case VK_TIMEOUT: return "timeout";
	default: return "error";
	}
}

int vk_check(struct vk_ctx *c, VkResult r, const char *what, char *err, size_t errlen)
{
	if (r == VK_SUCCESS)
		return c ? vk_validation_status(c, err, errlen) : 0;
	int code = r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? AWQ_ETOOBIG
		   : r == VK_ERROR_OUT_OF_HOST_MEMORY ? AWQ_ENOMEM : AWQ_EDEVICE;
	return awq_err(err, errlen, code, "Vulkan: %s failed: %s (VkResult %d)", what, vk_result_name(r), (int)r);
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
						 VkDebugUtilsMessageTypeFlagsEXT type,
						 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
	struct vk_ctx *c = user;
	(void)type;
	if (!(sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
		return VK_FALSE;
	if (c->val_errors++ == 0)
		snprintf(c->val_msg, sizeof(c->val_msg), "%s", data->pMessage ? data->pMessage : "(no text)");
	if (!c->opts.quiet)
		fprintf(stderr, "awqrun vulkan validation: %s\n", data->pMessage ? data->pMessage : "(no text)");
	return VK_FALSE;
}

int vk_validation_status(struct vk_ctx *c, char *err, size_t errlen)
{
	if (!c->val_errors)
		return 0;
	return awq_err(err, errlen, AWQ_EDEVICE, "Vulkan validation reported %d message(s), first: %.300s", c->val_errors,
		       c->val_msg);
}

static int has_layer(const char *name)
{
	uint32_t n = 0;
	vkEnumerateInstanceLayerProperties(&n, NULL);
	VkLayerProperties *l = calloc(n ? n : 1, sizeof(*l));
	int found = 0;
	if (l && vkEnumerateInstanceLayerProperties(&n, l) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			found |= strcmp(l[i].layerName, name) == 0;
	free(l);
	return found;
}

/* One VkInstance per process and validation mode, created on first use and never destroyed:
 * NVIDIA's driver misbehaves after repeated vkCreateInstance / vkDestroyInstance cycles in one
 * process (on the H200, test_vulkan_ops's ~170 open/close pairs ended in vkCreateInstance returning
 * VK_ERROR_INCOMPATIBLE_DRIVER; other projects report corrupted subgroup ids after ~11 cycles).
 * Devices are still created and destroyed per context. Messages of the instance's creation itself
 * (validation on) are collected in inst_msgs and handed to the context that created it. */
static pthread_mutex_t inst_lock = PTHREAD_MUTEX_INITIALIZER;
static VkInstance shared_inst[2];
static struct vk_ctx inst_msgs[2];

/* c may be a zeroed context used only for probing (no validation). */
int vk_instance(struct vk_ctx *c, char *err, size_t errlen)
{
	const char *layer = "VK_LAYER_KHRONOS_validation", *ext = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
	const int v = c->validate ? 1 : 0;
	VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "awqrun",
				 .pEngineName = "awqrun", .apiVersion = VK_API_VERSION_1_2};
	VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
	VkDebugUtilsMessengerCreateInfoEXT mi = {
		.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
		.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
		.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
			       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
		.pfnUserCallback = on_message,
		.pUserData = &inst_msgs[v]};
	uint32_t ver = 0;
	if (vkEnumerateInstanceVersion(&ver) != VK_SUCCESS || ver < VK_API_VERSION_1_1)
		return awq_err(err, errlen, AWQ_ENODEV, "the Vulkan loader supports only Vulkan 1.0; 1.1 is needed");
	if (v && !has_layer(layer))
		return awq_err(err, errlen, AWQ_ENODEV,
			       "AWQ_VK_VALIDATE is set but %s is not installed (vulkan-validationlayers)", layer);
	pthread_mutex_lock(&inst_lock);
	if (!shared_inst[v]) {
		if (v) {
			ci.enabledLayerCount = 1;
			ci.ppEnabledLayerNames = &layer;
			ci.enabledExtensionCount = 1;
			ci.ppEnabledExtensionNames = &ext;
			ci.pNext = &mi; /* also reports problems inside vkCreateInstance itself */
			inst_msgs[v].opts.quiet = c->opts.quiet;
		}
		VkResult r = vkCreateInstance(&ci, NULL, &shared_inst[v]);
		if (r != VK_SUCCESS) {
			shared_inst[v] = VK_NULL_HANDLE;
			pthread_mutex_unlock(&inst_lock);
			return awq_err(err, errlen, AWQ_ENODEV, "Vulkan: no usable driver (vkCreateInstance: %s)",
				       vk_result_name(r));
		}
		if (inst_msgs[v].val_errors) {
			c->val_errors += inst_msgs[v].val_errors;
			memcpy(c->val_msg, inst_msgs[v].val_msg, sizeof(c->val_msg));
		}
	}
	c->inst = shared_inst[v];
	pthread_mutex_unlock(&inst_lock);
	if (v) {
		mi.pUserData = c;
		PFN_vkCreateDebugUtilsMessengerEXT f =
			(PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(c->inst, "vkCreateDebugUtilsMessengerEXT");
		if (!f || f(c->inst, &mi, NULL, &c->messenger) != VK_SUCCESS)
			return awq_err(err, errlen, AWQ_EDEVICE, "Vulkan: cannot install the validation message callback");
	}
	return 0;
}

static void device_desc(VkPhysicalDevice p, struct awq_device_desc *d)
{
	VkPhysicalDeviceProperties pr;
	VkPhysicalDeviceMemoryProperties mp;
	static const char *types[] = {"other", "integrated GPU", "discrete GPU", "virtual GPU", "CPU"};
	vkGetPhysicalDeviceProperties(p, &pr);
	vkGetPhysicalDeviceMemoryProperties(p, &mp);
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%.127s", pr.deviceName);
	snprintf(d->arch, sizeof(d->arch), "%s, vendor 0x%04x, Vulkan %u.%u", types[pr.deviceType <= 4 ? pr.deviceType : 0],
		 pr.vendorID, VK_API_VERSION_MAJOR(pr.apiVersion), VK_API_VERSION_MINOR(pr.apiVersion));
	for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
		if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
			d->mem_total += mp.memoryHeaps[i].size;
}

int vk_probe_devices(struct awq_device_desc *out, int max, char *err, size_t errlen)
{
	struct vk_ctx c = {0};
	int rc = vk_instance(&c, err, errlen);
	if (rc)
		return 0; /* no driver: zero devices, err says why */
	uint32_t n = 0;
	vkEnumeratePhysicalDevices(c.inst, &n, NULL);
	VkPhysicalDevice *p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	vkEnumeratePhysicalDevices(c.inst, &n, p);
	for (uint32_t i = 0; i < n && (int)i < max; i++)
		device_desc(p[i], &out[i]);
	free(p);
	if (n == 0)
		awq_err(err, errlen, AWQ_ENODEV, "the Vulkan loader found no physical device");
	return (int)(n < (uint32_t)max ? n : (uint32_t)max);
}

static int has_ext(VkPhysicalDevice p, const char *name)
{
	uint32_t n = 0;
	vkEnumerateDeviceExtensionProperties(p, NULL, &n, NULL);
	VkExtensionProperties *e = calloc(n ? n : 1, sizeof(*e));
	int found = 0;
	if (e && vkEnumerateDeviceExtensionProperties(p, NULL, &n, e) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			found |= strcmp(e[i].extensionName, name) == 0;
	free(e);
	return found;
}

#ifdef AWQ_VK_NV_COOPMAT
/* The NV path multiplies fp16 16x16x16 tiles into f32 at subgroup scope. */
static int nv_coopmat_shape(struct vk_ctx *c)
{
	PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV f = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
		vkGetInstanceProcAddr(c->inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
	uint32_t n = 0;
	int ok = 0;
	if (!f || f(c->phys, &n, NULL) != VK_SUCCESS || n == 0)
		return 0;
	VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof(*p));
	if (!p)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
	if (f(c->phys, &n, p) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			ok |= p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 &&
			      p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV && p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
			      p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV && p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
			      p[i].scope == VK_SCOPE_SUBGROUP_NV;
	free(p);
	return ok;
}
#endif

static int pick_queue(struct vk_ctx *c)
{
	uint32_t n = 0;
	vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &n, NULL);
	VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof(*q));
	int found = -1;
	if (!q)
		return -1;
	vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &n, q);
	for (uint32_t i = 0; i < n && found < 0; i++)
		if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && q[i].timestampValidBits)
			found = (int)i;
	for (uint32_t i = 0; i < n && found < 0; i++)
		if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
			found = (int)i;
	free(q);
	return found;
}

/* Subgroup operations in compute and the limits every shader assumes. */
static int check_device(struct vk_ctx *c, const VkPhysicalDeviceSubgroupProperties *sg,
			const VkPhysicalDeviceSubgroupSizeControlProperties *sc, char *err, size_t errlen)
{
	const VkPhysicalDeviceLimits *l = &c->props.limits;
	const char *name = c->props.deviceName;
	if (c->props.apiVersion < VK_API_VERSION_1_1)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s supports only Vulkan 1.0; 1.1 is needed", name);
	if (!(sg->supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ||
	    (sg->supportedOperations & (VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT)) !=
		    (VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT))
		return awq_err(err, errlen, AWQ_EUNSUPPORTED,
			       "%s lacks subgroup arithmetic in compute shaders, which every reduction here uses", name);
	c->subgroup_size = sg->subgroupSize;
	c->sg_shuffle = (sg->supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) != 0;
	c->min_subgroup = sc->minSubgroupSize ? sc->minSubgroupSize : sg->subgroupSize;
	if (c->min_subgroup * 64 < 256)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s has subgroups of %u invocations; at least 4 are needed",
			       name, c->min_subgroup);
	if (l->maxComputeSharedMemorySize < 16384 + 256 || l->maxComputeWorkGroupInvocations < 256 ||
	    l->maxComputeWorkGroupSize[0] < 256)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED,
			       "%s allows %u bytes of shared memory and %u invocations per workgroup; the shaders need 16640 and 256",
			       name, l->maxComputeSharedMemorySize, l->maxComputeWorkGroupInvocations);
	if (l->maxPushConstantsSize < sizeof(struct vk_push) || l->maxPerStageDescriptorStorageBuffers < VK_NBIND)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s has too few push-constant bytes or storage bindings", name);
	return 0;
}

int vk_open_device(struct vk_ctx *c, int index, char *err, size_t errlen)
{
	uint32_t n = 0;
	vkEnumeratePhysicalDevices(c->inst, &n, NULL);
	if (index < 0 || (uint32_t)index >= n)
		return awq_err(err, errlen, AWQ_ENODEV, "Vulkan device %d does not exist (%u found)", index, n);
	VkPhysicalDevice *p = calloc(n, sizeof(*p));
	if (!p)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	vkEnumeratePhysicalDevices(c->inst, &n, p);
	c->phys = p[index];
	free(p);
	/* integer dot product: whether 4x8-bit packed signed dots are fast (the q8 knob's report). Core in
	 * 1.3, but the instance asks for 1.2, so the extension is what makes SPV_KHR_integer_dot_product
	 * legal in a shader (the validation layer checks it) */
	int idot_ext = has_ext(c->phys, "VK_KHR_shader_integer_dot_product");
	VkPhysicalDeviceShaderIntegerDotProductProperties idp = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
	VkPhysicalDeviceSubgroupSizeControlProperties sc = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES,
		.pNext = idot_ext ? (void *)&idp : NULL};
	VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &sc};
	VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
						     .pNext = &sg};
	VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
	vkGetPhysicalDeviceProperties2(c->phys, &p2);
	c->props = p2.properties;
	c->idot_fast = idot_ext && idp.integerDotProduct4x8BitPackedSignedAccelerated;
	vkGetPhysicalDeviceMemoryProperties(c->phys, &c->memprops);
	int rc = check_device(c, &sg, &sc, err, errlen);
	if (rc)
		return rc;
	c->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : (1ull << 30);
	c->max_range = c->props.limits.maxStorageBufferRange;
	c->max_allocs = c->props.limits.maxMemoryAllocationCount;

	VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
	VkPhysicalDeviceShaderFloat16Int8Features f16 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
		.pNext = c->props.apiVersion >= VK_API_VERSION_1_2 ? (void *)&vmm : NULL};
	VkPhysicalDeviceShaderIntegerDotProductFeatures idf = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES, .pNext = &f16};
	VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
					.pNext = idot_ext ? (void *)&idf : (void *)&f16};
#ifdef AWQ_VK_NV_COOPMAT
	VkPhysicalDeviceCooperativeMatrixFeaturesNV cm = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
	int cm_ext = has_ext(c->phys, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
	if (cm_ext) {
		cm.pNext = f2.pNext;
		f2.pNext = &cm;
	}
#endif
	/* AWQ_VK_PIPELINE_STATS=1: the driver's statistics of every pipeline built (registers, shared
	 * memory, ... as the driver names them; vk_pipe_get prints them), where it has the extension */
	VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pex = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
	const int want_stats = c->pipe_stats; /* read in vk_open */
	const int pex_ext = want_stats && has_ext(c->phys, "VK_KHR_pipeline_executable_properties");
	if (pex_ext) {
		pex.pNext = f2.pNext;
		f2.pNext = &pex;
	}
	int f16_ext = c->props.apiVersion >= VK_API_VERSION_1_2 || has_ext(c->phys, "VK_KHR_shader_float16_int8");
	vkGetPhysicalDeviceFeatures2(c->phys, &f2);
	c->pipe_stats = pex_ext && pex.pipelineExecutableInfo;
	if (want_stats && !c->pipe_stats)
		fprintf(stderr, "awqrun: vulkan: AWQ_VK_PIPELINE_STATS: %s has no VK_KHR_pipeline_executable_properties\n",
			c->props.deviceName);
	c->has_f16 = f16_ext && f16.shaderFloat16;
	/* the sampled chain: chain_sample's double arithmetic and 64-bit random stream, topk_part's 64-bit
	 * keys, both in workgroups of 256 (Vulkan promises only 128) */
	c->has_f64i64 = f2.features.shaderFloat64 && f2.features.shaderInt64 &&
			c->props.limits.maxComputeWorkGroupInvocations >= 256 && c->props.limits.maxComputeWorkGroupSize[0] >= 256;
	/* enabled only for the knob that uses it (AWQ_VK_Q8=1, read in vk_open) */
	c->q8 = c->q8 && idot_ext && idf.shaderIntegerDotProduct;
	if (getenv("AWQ_VK_NO_F16"))
		c->has_f16 = 0;
	snprintf(c->coopmat_why, sizeof(c->coopmat_why), "no cooperative matrix: this build's glslang/headers lack "
							    "GL_NV_cooperative_matrix and the KHR extension");
#ifdef AWQ_VK_NV_COOPMAT
	/* matmul_coopmat.comp: 4 subgroups of 32 and 24 KiB of shared memory; its LARGE tile 8 subgroups
	 * and 48 KiB (AWQ_VK_COOPMAT_TILE=64 keeps the small tile, for A/Bs) */
	c->nv_coopmat = cm_ext && cm.cooperativeMatrix && c->has_f16 && vmm.vulkanMemoryModel && c->subgroup_size == 32 &&
			c->props.limits.maxComputeSharedMemorySize >= 24576 && nv_coopmat_shape(c) &&
			!getenv("AWQ_VK_NO_COOPMAT");
	c->nv_coopmat_large = c->nv_coopmat && c->props.limits.maxComputeSharedMemorySize >= 49152 &&
			      c->props.limits.maxComputeWorkGroupInvocations >= 256 &&
			      c->props.limits.maxComputeWorkGroupSize[0] >= 256 && c->coopmat_tile != 64;
	/* the 128 x 128 tile over 16 subgroups: 98 registers against 157 for 8 subgroups of 4 x 2 on the
	 * H200, 2-11% faster alone and llama2-7b AWQ pp512 +3.5% (session 18, docs/perf.md) */
	c->nv_coopmat_w16 = c->nv_coopmat_large && c->coopmat_warps == 16 &&
			    c->props.limits.maxComputeWorkGroupInvocations >= 512 &&
			    c->props.limits.maxComputeWorkGroupSize[0] >= 512;
	snprintf(c->coopmat_why, sizeof(c->coopmat_why), "%s",
		 c->nv_coopmat_w16 ? "NV cooperative matrix fp16 16x16x16, 128 x 128 tiles of 16 subgroups (device has VK_NV_cooperative_matrix)"
		 : c->nv_coopmat_large ? "NV cooperative matrix fp16 16x16x16, 128 x 128 tiles (device has VK_NV_cooperative_matrix)"
		 : c->nv_coopmat ? "NV cooperative matrix fp16 16x16x16, 64 x 64 tiles (device has VK_NV_cooperative_matrix)"
		 : getenv("AWQ_VK_NO_COOPMAT") ? "no cooperative matrix: disabled by AWQ_VK_NO_COOPMAT"
		 : cm_ext ? "no cooperative matrix: VK_NV_cooperative_matrix lacks fp16 16x16x16 or a needed feature"
			  : "no cooperative matrix: device has no VK_NV_cooperative_matrix (KHR path needs a newer glslang)");
#endif
	int q = pick_queue(c);
	if (q < 0)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s has no compute queue", c->props.deviceName);
	c->qfamily = (uint32_t)q;

	/* enable only what is used */
	VkPhysicalDeviceVulkanMemoryModelFeatures evmm = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES,
		.vulkanMemoryModel = c->nv_coopmat ? VK_TRUE : VK_FALSE};
	VkPhysicalDeviceShaderFloat16Int8Features ef16 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
		.pNext = c->nv_coopmat ? (void *)&evmm : NULL,
		.shaderFloat16 = c->has_f16 ? VK_TRUE : VK_FALSE};
	const char *exts[6];
	uint32_t n_ext = 0;
	void *chain = c->has_f16 || c->nv_coopmat ? (void *)&ef16 : NULL;
	if (c->has_f16 && c->props.apiVersion < VK_API_VERSION_1_2)
		exts[n_ext++] = "VK_KHR_shader_float16_int8";
	VkPhysicalDeviceShaderIntegerDotProductFeatures eidf = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES, .pNext = chain,
		.shaderIntegerDotProduct = VK_TRUE};
	if (c->q8) {
		chain = &eidf;
		exts[n_ext++] = "VK_KHR_shader_integer_dot_product";
	}
#ifdef AWQ_VK_NV_COOPMAT
	VkPhysicalDeviceCooperativeMatrixFeaturesNV ecm = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV, .pNext = chain,
		.cooperativeMatrix = VK_TRUE};
	if (c->nv_coopmat) {
		exts[n_ext++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
		chain = &ecm;
	}
#endif
	VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR epex = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR, .pNext = chain,
		.pipelineExecutableInfo = VK_TRUE};
	if (c->pipe_stats) {
		exts[n_ext++] = "VK_KHR_pipeline_executable_properties";
		chain = &epex;
	}
	float prio = 1.0f;
	VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = c->qfamily,
				       .queueCount = 1, .pQueuePriorities = &prio};
	VkPhysicalDeviceFeatures ef = {.shaderFloat64 = c->has_f64i64 ? VK_TRUE : VK_FALSE,
				       .shaderInt64 = c->has_f64i64 ? VK_TRUE : VK_FALSE};
	VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = chain, .queueCreateInfoCount = 1,
				  .pQueueCreateInfos = &qci, .enabledExtensionCount = n_ext, .ppEnabledExtensionNames = exts,
				  .pEnabledFeatures = &ef};
	rc = vk_check(c, vkCreateDevice(c->phys, &dci, NULL, &c->dev), "vkCreateDevice", err, errlen);
	if (rc)
		return rc;
	vkGetDeviceQueue(c->dev, c->qfamily, 0, &c->queue);
	snprintf(c->device, sizeof(c->device), "%s", c->props.deviceName);
	return 0;
}
