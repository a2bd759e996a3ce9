################################################################################
#
# lanai
#
################################################################################

# Built from this repository: the BR2_EXTERNAL tree lives in its buildroot/.
LANAI_VERSION = local
LANAI_SITE = $(BR2_EXTERNAL_LANAI_PATH)/..
LANAI_SITE_METHOD = local
LANAI_LICENSE = Apache-2.0
# Keep build outputs, image artefacts and Node modules out of the rsync.
LANAI_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude target --exclude image/out --exclude bench/out \
	--exclude node_modules --exclude lanai-data

# Buildroot vendors the crates of a cargo package in its download
# post-process, which never runs for a local package (it is rsynced, not
# downloaded). Vendor them here, at configure time, so that the build can run
# `cargo build --offline` like any other cargo package. This is the one step
# that needs crates.io.
define LANAI_VENDOR_CRATES
	if [ ! -d $(@D)/VENDOR ]; then \
		cd $(@D) && \
		mkdir -p .cargo && \
		$(HOST_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
			cargo vendor --locked --versioned-dirs VENDOR \
			> .cargo/config.toml.new && \
		mv .cargo/config.toml.new .cargo/config.toml; \
	fi
endef
LANAI_PRE_CONFIGURE_HOOKS += LANAI_VENDOR_CRATES

$(eval $(cargo-package))
