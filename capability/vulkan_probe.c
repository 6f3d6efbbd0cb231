/* Vulkan probe: every physical device's properties, memory heaps, the features and extensions that
 * decide which shader paths can run (16-bit float, 8-bit int, 8/16-bit storage, bfloat16, integer dot
 * product, subgroup sizes) and the cooperative-matrix shapes. libvulkan.so.1 is loaded with dlopen;
 * every other entry point comes from vkGetInstanceProcAddr.
 *
 * What can be queried depends on the headers awqrun is built with: VK_KHR_cooperative_matrix
 * (headers >= 1.3.255) and VK_KHR_shader_bfloat16 (>= 1.4.311) are queried only when the header
 * defines them; with older headers (Debian 12 ships 1.3.239) the extension is still listed as
 * advertised but its shapes are reported as not queryable. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vulkan/vulkan.h>

#include "caps_internal.h"

#define MAX_PHYS 16

struct vk_api {
	void *lib;
	VkInstance inst;
	PFN_vkGetInstanceProcAddr gipa;
	PFN_vkDestroyInstance DestroyInstance;
	PFN_vkEnumeratePhysicalDevices EnumeratePhysicalDevices;
	PFN_vkGetPhysicalDeviceProperties2 GetProperties2;
	PFN_vkGetPhysicalDeviceFeatures2 GetFeatures2;
	PFN_vkGetPhysicalDeviceMemoryProperties2 GetMemoryProperties2;
	PFN_vkEnumerateDeviceExtensionProperties EnumerateDeviceExtensionProperties;
};

/* Extensions worth showing: matrix units, dot products, narrow formats, subgroups, memory. */
static const char *const shown_ext[] = {
	"VK_KHR_cooperative_matrix", "VK_NV_cooperative_matrix", "VK_NV_cooperative_matrix2",
	"VK_NV_cooperative_vector", "VK_KHR_shader_integer_dot_product", "VK_KHR_shader_float16_int8",
	"VK_KHR_8bit_storage", "VK_KHR_16bit_storage", "VK_KHR_shader_bfloat16", "VK_EXT_shader_float8",
	"VK_EXT_subgroup_size_control", "VK_KHR_shader_subgroup_extended_types", "VK_EXT_memory_budget",
	"VK_KHR_buffer_device_address", "VK_KHR_driver_properties", "VK_AMD_shader_core_properties",
};

static const char *component_name(int t)
{
	/* VkComponentTypeKHR / VkComponentTypeNV share these values; the large ones are later additions. */
	switch (t) {
	case 0: return "f16";
	case 1: return "f32";
	case 2: return "f64";
	case 3: return "s8";
	case 4: return "s16";
	case 5: return "s32";
	case 6: return "s64";
	case 7: return "u8";
	case 8: return "u16";
	case 9: return "u32";
	case 10: return "u64";
	case 1000141000: return "bf16";
	case 1000491002: return "e4m3";
	case 1000491003: return "e5m2";
	}
	return "other";
}

static const char *scope_name(int s)
{
	return s == 3 ? "subgroup" : s == 2 ? "workgroup" : s == 1 ? "device" : s == 5 ? "queue" : "other";
}

static const char *vendor_name(uint32_t id)
{
	switch (id) {
	case 0x10de: return "NVIDIA";
	case 0x1002: return "AMD";
	case 0x8086: return "Intel";
	case 0x13b5: return "ARM";
	case 0x5143: return "Qualcomm";
	case 0x106b: return "Apple";
	case 0x10005: return "Mesa";
	}
	return "unknown";
}

static const char *type_name(VkPhysicalDeviceType t)
{
	switch (t) {
	case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
	case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
	case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
	case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
	default: return "other";
	}
}

#define GET(api, field, name) (*(void **)&(api)->field = (void *)(api)->gipa((api)->inst, name))

static int open_instance(struct vk_api *a, char *why, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!a->lib) {
		snprintf(why, len, "no Vulkan loader (libvulkan.so.1 not found)");
		return -1;
	}
	*(void **)&a->gipa = dlsym(a->lib, "vkGetInstanceProcAddr");
	PFN_vkCreateInstance create = a->gipa ? (PFN_vkCreateInstance)(void *)a->gipa(NULL, "vkCreateInstance") : NULL;
	PFN_vkEnumerateInstanceVersion version =
		a->gipa ? (PFN_vkEnumerateInstanceVersion)(void *)a->gipa(NULL, "vkEnumerateInstanceVersion") : NULL;
	uint32_t v = 0;
	if (!create || !version || version(&v) != VK_SUCCESS || v < VK_API_VERSION_1_1) {
		snprintf(why, len, "the Vulkan loader is older than 1.1");
		dlclose(a->lib);
		return -1;
	}
	VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "awqrun caps",
				 .apiVersion = v < VK_API_VERSION_1_3 ? v : VK_API_VERSION_1_3};
	VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
	VkResult r = create(&ci, NULL, &a->inst);
	if (r != VK_SUCCESS) {
		snprintf(why, len, "vkCreateInstance failed (VkResult %d): no usable Vulkan driver", (int)r);
		dlclose(a->lib);
		return -1;
	}
	if (!GET(a, DestroyInstance, "vkDestroyInstance") || !GET(a, EnumeratePhysicalDevices, "vkEnumeratePhysicalDevices") ||
	    !GET(a, GetProperties2, "vkGetPhysicalDeviceProperties2") || !GET(a, GetFeatures2, "vkGetPhysicalDeviceFeatures2") ||
	    !GET(a, GetMemoryProperties2, "vkGetPhysicalDeviceMemoryProperties2") ||
	    !GET(a, EnumerateDeviceExtensionProperties, "vkEnumerateDeviceExtensionProperties")) {
		snprintf(why, len, "the Vulkan loader lacks Vulkan 1.1 entry points");
		if (a->DestroyInstance)
			a->DestroyInstance(a->inst, NULL);
		dlclose(a->lib);
		return -1;
	}
	return 0;
}

struct ext_list {
	VkExtensionProperties *p;
	uint32_t n;
};

static int has_ext(const struct ext_list *e, const char *name)
{
	for (uint32_t i = 0; i < e->n; i++)
		if (strcmp(e->p[i].extensionName, name) == 0)
			return 1;
	return 0;
}

static void list_extensions(struct awq_device_caps *d, const struct ext_list *e)
{
	size_t used = 0;
	d->vk.n_extensions = (int)e->n;
	for (size_t i = 0; i < sizeof(shown_ext) / sizeof(shown_ext[0]); i++) {
		if (!has_ext(e, shown_ext[i]))
			continue;
		int w = snprintf(d->vk.extensions + used, sizeof(d->vk.extensions) - used, "%s%s", used ? " " : "",
				 shown_ext[i]);
		if (w < 0 || (size_t)w >= sizeof(d->vk.extensions) - used)
			break;
		used += (size_t)w;
	}
	d->vk.khr_coopmat = has_ext(e, "VK_KHR_cooperative_matrix");
	d->vk.nv_coopmat = has_ext(e, "VK_NV_cooperative_matrix");
	d->vk.nv_coopmat2 = has_ext(e, "VK_NV_cooperative_matrix2");
}

static void add_coopmat(struct awq_device_caps *d, int m, int n, int k, int a, int b, int c, int r, int scope, int nv)
{
	if (d->vk.n_coopmat >= AWQ_CAPS_MAX_COOPMAT)
		return;
	struct awq_coopmat *x = &d->vk.coopmat[d->vk.n_coopmat++];
	x->m = m, x->n = n, x->k = k, x->nv = nv;
	snprintf(x->a, sizeof(x->a), "%s", component_name(a));
	snprintf(x->b, sizeof(x->b), "%s", component_name(b));
	snprintf(x->c, sizeof(x->c), "%s", component_name(c));
	snprintf(x->result, sizeof(x->result), "%s", component_name(r));
	snprintf(x->scope, sizeof(x->scope), "%s", scope_name(scope));
}

#ifdef VK_KHR_cooperative_matrix
static void coopmat_khr(const struct vk_api *a, VkPhysicalDevice pd, struct awq_device_caps *d)
{
	PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(
		void *)a->gipa(a->inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
	uint32_t n = 0;
	d->vk.khr_coopmat_queryable = get != NULL;
	if (!get || get(pd, &n, NULL) != VK_SUCCESS || n == 0)
		return;
	VkCooperativeMatrixPropertiesKHR *p = calloc(n, sizeof(*p));
	if (!p)
		return;
	for (uint32_t i = 0; i < n; i++)
		p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
	if (get(pd, &n, p) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			add_coopmat(d, (int)p[i].MSize, (int)p[i].NSize, (int)p[i].KSize, (int)p[i].AType, (int)p[i].BType,
				    (int)p[i].CType, (int)p[i].ResultType, (int)p[i].scope, 0);
	free(p);
}
#endif

#ifdef VK_NV_cooperative_matrix
static void coopmat_nv(const struct vk_api *a, VkPhysicalDevice pd, struct awq_device_caps *d)
{
	PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)(
		void *)a->gipa(a->inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
	uint32_t n = 0;
	d->vk.nv_coopmat_queryable = get != NULL;
	if (!get || get(pd, &n, NULL) != VK_SUCCESS || n == 0)
		return;
	VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof(*p));
	if (!p)
		return;
	for (uint32_t i = 0; i < n; i++)
		p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
	if (get(pd, &n, p) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			add_coopmat(d, (int)p[i].MSize, (int)p[i].NSize, (int)p[i].KSize, (int)p[i].AType, (int)p[i].BType,
				    (int)p[i].CType, (int)p[i].DType, (int)p[i].scope, 1);
	free(p);
}
#endif

/* Features, each struct chained only where the device's API version or an extension provides it. */
static void features(const struct vk_api *a, VkPhysicalDevice pd, uint32_t api, const struct ext_list *e,
		     struct awq_device_caps *d)
{
	VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
	VkPhysicalDevice8BitStorageFeatures s8 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
	VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
	VkPhysicalDeviceShaderIntegerDotProductFeatures dot = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
	VkPhysicalDeviceSubgroupSizeControlFeatures ssc = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
	VkPhysicalDeviceFeatures2 f = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
	int has_f16 = api >= VK_API_VERSION_1_2 || has_ext(e, "VK_KHR_shader_float16_int8");
	int has_s8 = api >= VK_API_VERSION_1_2 || has_ext(e, "VK_KHR_8bit_storage");
	int has_dot = api >= VK_API_VERSION_1_3 || has_ext(e, "VK_KHR_shader_integer_dot_product");
	int has_ssc = api >= VK_API_VERSION_1_3 || has_ext(e, "VK_EXT_subgroup_size_control");
	void **tail = &f.pNext;
#define CHAIN(s) (*tail = &(s), tail = &(s).pNext)
	CHAIN(s16);
	if (has_f16)
		CHAIN(f16);
	if (has_s8)
		CHAIN(s8);
	if (has_dot)
		CHAIN(dot);
	if (has_ssc)
		CHAIN(ssc);
#ifdef VK_KHR_shader_bfloat16
	VkPhysicalDeviceShaderBfloat16FeaturesKHR bf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_BFLOAT16_FEATURES_KHR};
	int has_bf = has_ext(e, "VK_KHR_shader_bfloat16");
	if (has_bf)
		CHAIN(bf);
#endif
#undef CHAIN
	a->GetFeatures2(pd, &f);
	d->vk.storage_16bit = s16.storageBuffer16BitAccess == VK_TRUE;
	d->vk.shader_float16 = has_f16 && f16.shaderFloat16 == VK_TRUE;
	d->vk.shader_int8 = has_f16 && f16.shaderInt8 == VK_TRUE;
	d->vk.storage_8bit = has_s8 && s8.storageBuffer8BitAccess == VK_TRUE;
	d->vk.int_dot = has_dot && dot.shaderIntegerDotProduct == VK_TRUE;
	d->vk.subgroup_size_control = has_ssc && ssc.subgroupSizeControl == VK_TRUE;
#ifdef VK_KHR_shader_bfloat16
	d->vk.shader_bfloat16 = has_bf && bf.shaderBFloat16Type == VK_TRUE;
#else
	d->vk.shader_bfloat16 = has_ext(e, "VK_KHR_shader_bfloat16") ? -1 : 0;
#endif
}

static void properties(const struct vk_api *a, VkPhysicalDevice pd, const struct ext_list *e, struct awq_device_caps *d,
		       uint32_t *api_out)
{
	VkPhysicalDeviceProperties2 p = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
	VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
	VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
	VkPhysicalDeviceSubgroupSizeControlProperties ssc = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
	VkPhysicalDeviceShaderIntegerDotProductProperties dot = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};

	/* The device's API version decides which structs it understands; read it alone first. */
	a->GetProperties2(pd, &p);
	uint32_t api = p.properties.apiVersion;
	int has_drv = api >= VK_API_VERSION_1_2 || has_ext(e, "VK_KHR_driver_properties");
	int has_ssc = api >= VK_API_VERSION_1_3 || has_ext(e, "VK_EXT_subgroup_size_control");
	int has_dot = api >= VK_API_VERSION_1_3 || has_ext(e, "VK_KHR_shader_integer_dot_product");
	p.pNext = &sg;
	void **tail = &sg.pNext;
	if (has_drv)
		*tail = &drv, tail = &drv.pNext;
	if (has_ssc)
		*tail = &ssc, tail = &ssc.pNext;
	if (has_dot)
		*tail = &dot, tail = &dot.pNext;
	a->GetProperties2(pd, &p);
	*api_out = api;
	const VkPhysicalDeviceProperties *b = &p.properties;
	snprintf(d->name, sizeof(d->name), "%.127s", b->deviceName);
	snprintf(d->vendor, sizeof(d->vendor), "%s", vendor_name(b->vendorID));
	d->vk.api_version = api;
	d->vk.driver_version = b->driverVersion;
	d->vk.vendor_id = b->vendorID;
	d->vk.device_id = b->deviceID;
	snprintf(d->vk.device_type, sizeof(d->vk.device_type), "%s", type_name(b->deviceType));
	d->vk.max_shared_bytes = b->limits.maxComputeSharedMemorySize;
	d->vk.subgroup_size = (int)sg.subgroupSize;
	d->vk.subgroup_min = has_ssc ? (int)ssc.minSubgroupSize : d->vk.subgroup_size;
	d->vk.subgroup_max = has_ssc ? (int)ssc.maxSubgroupSize : d->vk.subgroup_size;
	d->vk.int_dot_4x8_packed_accel = has_dot && dot.integerDotProduct4x8BitPackedSignedAccelerated == VK_TRUE;
	d->vk.int_dot_8bit_accel = has_dot && dot.integerDotProduct8BitSignedAccelerated == VK_TRUE;
	if (has_drv) {
		snprintf(d->vk.driver_name, sizeof(d->vk.driver_name), "%.63s", drv.driverName);
		snprintf(d->driver, sizeof(d->driver), "%.30s %.40s (Vulkan %u.%u.%u)", drv.driverName, drv.driverInfo,
			 VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api), VK_API_VERSION_PATCH(api));
		if (drv.driverID == VK_DRIVER_ID_MESA_LLVMPIPE)
			snprintf(d->arch, sizeof(d->arch), "llvmpipe");
	} else {
		snprintf(d->driver, sizeof(d->driver), "Vulkan %u.%u.%u, driver version %#x", VK_API_VERSION_MAJOR(api),
			 VK_API_VERSION_MINOR(api), VK_API_VERSION_PATCH(api), b->driverVersion);
	}
}

static void memory(const struct vk_api *a, VkPhysicalDevice pd, const struct ext_list *e, struct awq_device_caps *d)
{
	VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
	VkPhysicalDeviceMemoryProperties2 m = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
	int has_budget = has_ext(e, "VK_EXT_memory_budget");
	if (has_budget)
		m.pNext = &budget;
	a->GetMemoryProperties2(pd, &m);
	const VkPhysicalDeviceMemoryProperties *p = &m.memoryProperties;
	for (uint32_t i = 0; i < p->memoryHeapCount; i++) {
		int local = (p->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
		if (i < AWQ_CAPS_MAX_HEAPS) {
			d->vk.heap_bytes[i] = p->memoryHeaps[i].size;
			d->vk.heap_device_local[i] = local;
			d->vk.n_heaps = (int)i + 1;
		}
		if (!local)
			continue;
		/* The largest device-local heap is what weights go to (several can exist, e.g. BAR). */
		if (p->memoryHeaps[i].size > d->mem_total) {
			d->mem_total = p->memoryHeaps[i].size;
			if (has_budget)
				d->mem_free = budget.heapBudget[i] > budget.heapUsage[i] ? budget.heapBudget[i] - budget.heapUsage[i] : 0;
		}
	}
}

static int one_device(const struct vk_api *a, VkPhysicalDevice pd, int index, struct awq_device_caps *d)
{
	struct ext_list e = {NULL, 0};
	uint32_t api = 0;

	awq_caps_init(d, "vulkan", index);
	d->present = 1;
	if (a->EnumerateDeviceExtensionProperties(pd, NULL, &e.n, NULL) != VK_SUCCESS)
		e.n = 0;
	if (e.n) {
		e.p = calloc(e.n, sizeof(*e.p));
		if (!e.p || a->EnumerateDeviceExtensionProperties(pd, NULL, &e.n, e.p) != VK_SUCCESS) {
			free(e.p);
			return -1;
		}
	}
	properties(a, pd, &e, d, &api);
	features(a, pd, api, &e, d);
	memory(a, pd, &e, d);
	list_extensions(d, &e);
#ifdef VK_KHR_cooperative_matrix
	if (d->vk.khr_coopmat)
		coopmat_khr(a, pd, d);
#endif
#ifdef VK_NV_cooperative_matrix
	if (d->vk.nv_coopmat)
		coopmat_nv(a, pd, d);
#endif
	free(e.p);
	return 0;
}

int awq_probe_vulkan(struct awq_device_caps *out, int max, char *why, size_t whylen)
{
	struct vk_api a;
	VkPhysicalDevice pds[MAX_PHYS];
	uint32_t n = MAX_PHYS;
	int found = 0;

	if (open_instance(&a, why, whylen))
		return 0;
	VkResult r = a.EnumeratePhysicalDevices(a.inst, &n, pds);
	if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0) {
		snprintf(why, whylen, "the Vulkan loader found no physical device");
	} else {
		for (uint32_t i = 0; i < n && found < max; i++)
			if (one_device(&a, pds[i], (int)i, &out[found]) == 0)
				found++;
		if (!found)
			snprintf(why, whylen, "out of memory listing Vulkan extensions");
	}
	a.DestroyInstance(a.inst, NULL);
	/* The loader stays loaded: unloading it unmaps driver code (Mesa's LLVM) that exit handlers and
	 * leak reports still refer to. */
	return found;
}
