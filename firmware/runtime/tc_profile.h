/*
 * tinycompress runtime: per-layer timing hooks called by the generated
 * tc_model_invoke(). They compile to nothing unless TC_PROFILE is defined,
 * so a production build pays nothing for them.
 */
#ifndef TC_PROFILE_H
#define TC_PROFILE_H

#include <stdint.h>

#if defined(TC_PROFILE)
void tc_profile_begin(void);
void tc_profile_layer(int32_t index);
#define TC_PROFILE_BEGIN() tc_profile_begin()
#define TC_PROFILE_LAYER(index) tc_profile_layer(index)
#else
#define TC_PROFILE_BEGIN() ((void)0)
#define TC_PROFILE_LAYER(index) ((void)(index))
#endif

#endif /* TC_PROFILE_H */
