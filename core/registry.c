/* Backend registry: the CPU backend is built in; GPU backends are plugins (libawqrun-<name>.so)
 * found next to the executable, in $AWQ_PLUGIN_DIR, or in the install's plugin directory. A plugin
 * that is missing or cannot load (no driver library) is reported with the reason, never fatal. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "error.h"

#ifndef AWQ_PLUGIN_INSTALL_DIR
#define AWQ_PLUGIN_INSTALL_DIR "/usr/local/lib/awqrun"
#endif

static const char *const backend_names[] = {"cpu", "cuda", "vulkan", NULL};

const char *const *awq_backend_names(void)
{
	return backend_names;
}

struct plugin {
	char name[16];
	void *handle;
	const struct awq_backend_ops *ops;
};

static struct plugin plugins[4];
static int n_plugins;

static int exe_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *slash = strrchr(buf, '/');
	if (!slash)
		return -1;
	*slash = 0;
	return 0;
}

static int try_dir(const char *dir, const char *file, void **handle, char *why, size_t whylen)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path) || access(path, F_OK) != 0)
		return -1;
	*handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!*handle) {
		const char *e = dlerror();
		snprintf(why, whylen, "%s exists but cannot be loaded: %s", path, e ? e : "unknown error");
		return -2;
	}
	return 0;
}

int awq_backend_find(const char *name, const struct awq_backend_ops **out, char *err, size_t errlen)
{
	char dirs[3][PATH_MAX];
	int n_dirs = 0;
	char file[64], why[PATH_MAX + 256] = "";
	void *handle = NULL;
	int rc = -1;

	if (strcmp(name, "cpu") == 0) {
		*out = awq_cpu_backend();
		return 0;
	}
	if (strcmp(name, "cuda") != 0 && strcmp(name, "vulkan") != 0)
		return awq_err(err, errlen, AWQ_ENODEV, "unknown backend '%s' (known: cpu, cuda, vulkan)", name);
	for (int i = 0; i < n_plugins; i++) {
		if (strcmp(plugins[i].name, name) == 0) {
			*out = plugins[i].ops;
			return 0;
		}
	}
	const char *env = getenv("AWQ_PLUGIN_DIR");
	if (env && *env)
		snprintf(dirs[n_dirs++], PATH_MAX, "%s", env);
	if (exe_dir(dirs[n_dirs], PATH_MAX) == 0)
		n_dirs++;
	snprintf(dirs[n_dirs++], PATH_MAX, "%s", AWQ_PLUGIN_INSTALL_DIR);
	snprintf(file, sizeof(file), "libawqrun-%s.so", name);
	for (int i = 0; i < n_dirs && rc == -1; i++)
		rc = try_dir(dirs[i], file, &handle, why, sizeof(why));
	if (rc == -1)
		return awq_err(err, errlen, AWQ_ENODEV,
			       "the %s backend is not available: %s was not built or not found (looked in %s%s%s%s%s)",
			       name, file, dirs[0], n_dirs > 1 ? ", " : "", n_dirs > 1 ? dirs[1] : "",
			       n_dirs > 2 ? ", " : "", n_dirs > 2 ? dirs[2] : "");
	if (rc == -2)
		return awq_err(err, errlen, AWQ_ENODEV, "the %s backend is not available: %s", name, why);
	const struct awq_backend_ops *(*entry)(int) =
		(const struct awq_backend_ops *(*)(int))dlsym(handle, "awq_backend_entry");
	const struct awq_backend_ops *ops = entry ? entry(AWQ_BACKEND_ABI) : NULL;
	if (!ops) {
		dlclose(handle);
		return awq_err(err, errlen, AWQ_ENODEV,
			       "the %s plugin %s does not match this awqrun (missing entry point or ABI %d)", name,
			       file, AWQ_BACKEND_ABI);
	}
	if (n_plugins < (int)(sizeof(plugins) / sizeof(plugins[0]))) {
		snprintf(plugins[n_plugins].name, sizeof(plugins[n_plugins].name), "%s", name);
		plugins[n_plugins].handle = handle;
		plugins[n_plugins].ops = ops;
		n_plugins++;
	}
	*out = ops;
	return 0;
}

int awq_backend_status(char *buf, size_t buflen)
{
	size_t used = 0;
	if (!buflen)
		return AWQ_EINVAL;
	buf[0] = 0;
	for (int i = 0; backend_names[i]; i++) {
		const struct awq_backend_ops *ops;
		struct awq_device_desc devs[16];
		char err[AWQ_ERRLEN] = "";
		int n = awq_backend_find(backend_names[i], &ops, err, sizeof(err));
		if (n == 0) {
			n = ops->probe(devs, 16, err, sizeof(err));
			if (n > 0) {
				for (int d = 0; d < n && used < buflen; d++)
					used += (size_t)snprintf(buf + used, buflen - used, "%-7s %d: %s (%s, %.1f GiB)\n",
								 backend_names[i], d, devs[d].name, devs[d].arch,
								 (double)devs[d].mem_total / (1u << 30));
				continue;
			}
			if (n == 0 && !err[0])
				snprintf(err, sizeof(err), "no device found");
		}
		if (used < buflen)
			used += (size_t)snprintf(buf + used, buflen - used, "%-7s unavailable: %s\n",
						 backend_names[i], err);
	}
	return 0;
}
